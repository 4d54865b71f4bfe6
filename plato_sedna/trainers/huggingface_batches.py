"""Batches, steps and tests of the Hugging Face trainers, as Plato composable-trainer strategies.

Items are sednaDataResource text-table samples ``(text, label)``. The model folder's
tokenizer encodes them and a transformers collator pads each batch; the model
computes its own loss from ``labels``.
"""

from __future__ import annotations

import math

import torch
from plato.trainers.strategies.base import TestingStrategy, TrainingStepStrategy

from plato_sedna.errors import ResourceError


class TextCollator:
    """``(text, label)`` items -> ``(BatchEncoding, labels)``, padded by a transformers collator.

    Parameters
    ----------
    tokenizer : PreTrainedTokenizerBase
        The model's tokenizer.
    max_length : int
        Longer texts are truncated to this many tokens.
    causal_lm : bool (default: False)
        Labels are the tokens themselves (padding ignored), for causal language
        modelling; otherwise the items' class labels.
    num_labels : int | None (default: None)
        The classifier's outputs; a label outside them stops training with an error.
    """

    def __init__(
        self, tokenizer, max_length: int, causal_lm: bool = False, num_labels: int | None = None
    ) -> None:
        from transformers import (
            DataCollatorForLanguageModeling,
            DataCollatorWithPadding,
        )

        self.tokenizer = tokenizer
        self.max_length = max_length
        self.causal_lm = causal_lm
        self.num_labels = num_labels
        if causal_lm:
            self.pad = DataCollatorForLanguageModeling(tokenizer, mlm=False)
        else:
            self.pad = DataCollatorWithPadding(tokenizer)

    def __call__(self, items):
        features = []
        for text, label in items:
            feature = dict(self.tokenizer(text, truncation=True, max_length=self.max_length))
            if not self.causal_lm:
                feature["labels"] = self._checked(int(label))
            features.append(feature)
        batch = self.pad(features)
        return batch, batch.pop("labels")

    def _checked(self, label: int) -> int:
        if self.num_labels is not None and not 0 <= label < self.num_labels:
            raise ResourceError(
                f"the dataset has label {label}, but the model classifies into {self.num_labels} "
                "classes (its num_labels): set [parameters.model] num_classes (or the Model's "
                "plato.sedna.io/num-classes) to the dataset's number of classes"
            )
        return label


class ModelLossStep(TrainingStepStrategy):
    """One optimizer step on the loss the transformers model computes from ``labels``."""

    def training_step(self, model, optimizer, examples, labels, loss_criterion, context):
        optimizer.zero_grad()
        loss = model(**examples, labels=labels).loss
        loss.backward()
        optimizer.step()
        return loss.detach()


def evaluation_loader(testset, sampler, batch_size: int, collate_fn) -> torch.utils.data.DataLoader:
    """A loader over ``testset`` (or the part a Plato sampler picks), batched by ``collate_fn``."""
    if sampler is not None and hasattr(sampler, "get"):
        sampler = sampler.get()
    elif isinstance(sampler, (list, range)):
        sampler = torch.utils.data.SubsetRandomSampler(sampler)
    return torch.utils.data.DataLoader(
        testset, batch_size=batch_size, shuffle=False, sampler=sampler, collate_fn=collate_fn
    )


class _LoaderTesting(TestingStrategy):
    """Scores the model in eval mode over a loader batched by ``collate_fn``."""

    def __init__(self, collate_fn: TextCollator) -> None:
        self.collate_fn = collate_fn

    def test_model(self, model, config, testset, sampler, context) -> float:
        loader = evaluation_loader(testset, sampler, config.get("batch_size", 32), self.collate_fn)
        model.to(context.device)
        model.eval()
        try:
            with torch.no_grad():
                return self.score(model, loader, context.device)
        finally:
            model.train()

    def score(self, model, loader, device) -> float:
        raise NotImplementedError


class AccuracyTesting(_LoaderTesting):
    """The share of test texts whose highest logit is their label."""

    def score(self, model, loader, device) -> float:
        correct = total = 0
        for examples, labels in loader:
            logits = model(**examples.to(device)).logits
            correct += (logits.argmax(-1) == labels.to(device)).sum().item()
            total += labels.size(0)
        return correct / total if total else 0.0


class PerplexityTesting(_LoaderTesting):
    """``exp`` of the mean next-token loss over the test texts' tokens."""

    def score(self, model, loader, device) -> float:
        loss_sum = tokens = 0.0
        for examples, labels in loader:
            labels = labels.to(device)
            loss = model(**examples.to(device), labels=labels).loss
            predicted = labels[:, 1:].ne(-100).sum().item()  # the model shifts labels by one
            loss_sum += loss.item() * predicted
            tokens += predicted
        return math.exp(loss_sum / tokens) if tokens else float("inf")
