"""The aggregator's MistNet training of an ultralytics model's back part, with ultralytics' own loss.

The back (modules ``cut .. last``) is trained on the trainers' features with the
detection loss ultralytics trains the whole model with (``model.init_criterion()``:
box, class and DFL terms, task-aligned assignment), its gains from ``model.args``
(ultralytics' defaults, ``[parameters.ultralytics]`` laid over them). The job's
trainer settings apply: ``trainer.epochs`` and ``batch_size``, ``trainer.optimizer``
and ``[parameters.optimizer]`` ``lr``, ``momentum``, ``weight_decay``. The front's
weights and ultralytics' fixed DFL projection are left as they are. Features are
not augmented (ultralytics' image augmentation has no meaning on features).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from plato_sedna.algorithms.yolo_features import DetectionFeatureSet

LOGGER = logging.getLogger(__name__)
DEFAULT_LR = {"SGD": 0.01}
FALLBACK_LR = 0.001
MAX_GRADIENT_NORM = 10.0  # as ultralytics' trainer clips


@dataclass(frozen=True)
class BackTraining:
    """How the back is trained: epochs, batch size, optimizer and its settings."""

    epochs: int
    batch_size: int
    optimizer: str = "AdamW"
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    seed: int = 0

    @classmethod
    def from_config(cls, trainer: Mapping[str, Any], optimizer: Mapping[str, Any] | None, seed: int | None) -> BackTraining:
        from plato_sedna.trainers.yolo_arguments import optimizer_name

        name = optimizer_name(trainer.get("optimizer"))
        optimizer = optimizer or {}
        return cls(
            epochs=int(trainer.get("epochs", 1)),
            batch_size=int(trainer.get("batch_size", 16)),
            optimizer="AdamW" if name == "auto" else name,
            lr=_float(optimizer.get("lr")),
            momentum=_float(optimizer.get("momentum")),
            weight_decay=_float(optimizer.get("weight_decay")),
            seed=int(seed or 0),
        )

    def build_optimizer(self, parameters) -> torch.optim.Optimizer:
        options: dict[str, float] = {"lr": self.lr if self.lr is not None else DEFAULT_LR.get(self.optimizer, FALLBACK_LR)}
        if self.weight_decay is not None:
            options["weight_decay"] = self.weight_decay
        if self.momentum is not None and self.optimizer in ("SGD", "RMSprop"):
            options["momentum"] = self.momentum
        return getattr(torch.optim, self.optimizer)(parameters, **options)


def _float(value) -> float | None:
    return None if value is None else float(value)


def back_parameters(split) -> list[torch.nn.Parameter]:
    """The back's trainable parameters (ultralytics' DFL projection stays fixed, as in its own training)."""
    chosen = []
    for name, parameter in split.back.named_parameters():
        trainable = ".dfl" not in name
        parameter.requires_grad_(trainable)
        if trainable:
            chosen.append(parameter)
    return chosen


def train_back(split, features: DetectionFeatureSet, training: BackTraining, hyperparameters: Mapping[str, Any],
               device) -> float | None:
    """Train ``split.back`` on ``features``; returns the last epoch's mean loss (None without features)."""
    from ultralytics.cfg import get_cfg

    if not len(features):
        return None
    model = split.model.to(device)
    model.args = get_cfg(overrides=dict(hyperparameters))  # the loss gains (box, cls, dfl)
    criterion = model.init_criterion()
    optimizer = training.build_optimizer(back_parameters(split))
    generator = torch.Generator().manual_seed(training.seed)
    model.eval()
    split.back.train()
    epoch_loss = None
    for epoch in range(training.epochs):
        total, batches = 0.0, 0
        for inputs, targets in features.batches(training.batch_size, generator):
            predictions = split.back([tensor.to(device) for tensor in inputs])
            loss, _ = criterion(predictions, {key: value.to(device) for key, value in targets.items()})
            optimizer.zero_grad()
            loss.sum().backward()
            torch.nn.utils.clip_grad_norm_(split.back.parameters(), MAX_GRADIENT_NORM)
            optimizer.step()
            total, batches = total + float(loss.detach().sum()) / len(inputs[0]), batches + 1
        epoch_loss = total / max(batches, 1)
        LOGGER.info("MistNet back epoch %d/%d: loss %.4f", epoch + 1, training.epochs, epoch_loss)
    model.cpu().eval()  # published and evaluated from the CPU, as the FedAvg detector is
    return epoch_loss
