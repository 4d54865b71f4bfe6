"""Hugging Face trainers over sednaDataResource text tables (``(text, label)`` items).

``trainer.type = "hf_text_classification"``: an ``AutoModelForSequenceClassification``
(from ``sednaModelResource``) fine-tuned on the labels; ``test()`` returns accuracy.
``trainer.type = "hf_causal_lm"``: a causal language model fine-tuned on the texts
(labels ignored); ``test()`` returns perplexity. Both tokenize with the model's own
tokenizer (``trainer.tokenizer`` overrides it), truncate to ``trainer.max_length``,
pad with transformers' collators, and add LoRA adapters when ``[parameters.lora]``
is set. Plato's own ``HuggingFace`` trainer stays for Hub datasets
(``data.datasource = "HuggingFace"``), whose items are token blocks, not text rows.
"""

from __future__ import annotations

import logging

from plato.trainers.composable import ComposableTrainer
from plato.trainers.strategies import CustomCollateFnDataLoaderStrategy

from plato_sedna import runtime_config
from plato_sedna.errors import ConfigError, ResourceError
from plato_sedna.trainers.huggingface_batches import (
    AccuracyTesting,
    ModelLossStep,
    PerplexityTesting,
    TextCollator,
)

LOGGER = logging.getLogger(__name__)
DEFAULT_MAX_LENGTH = 128


def load_tokenizer(model, trainer_type: str):
    """The tokenizer ``trainer.tokenizer`` names, else the one saved with the model.

    Raises
    ------
    ResourceError
        When there is none there; names where it was looked for and the fix.
    """
    from transformers import AutoTokenizer

    source = runtime_config.setting("trainer", "tokenizer") or getattr(model, "name_or_path", "")
    if not source:
        raise ConfigError(
            f"trainer.type = {trainer_type} cannot tell which tokenizer the model uses: set "
            "trainer.tokenizer to a Hub id or a folder holding tokenizer.json"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise ResourceError(
            f"cannot load the tokenizer of {source!r} for trainer.type = {trainer_type}: {error}. "
            "Save the tokenizer into the model folder (tokenizer.save_pretrained) or set "
            "trainer.tokenizer"
        ) from None
    if tokenizer.pad_token is None:  # e.g. gpt2: batches still need padding
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def max_length(model, tokenizer) -> int:
    """``trainer.max_length``, at most what the model's position embeddings allow."""
    limits = [
        value
        for value in (
            getattr(model.config, "max_position_embeddings", None),
            getattr(model.config, "n_positions", None),
            tokenizer.model_max_length,
        )
        if isinstance(value, int) and value > 0
    ]
    wanted = runtime_config.setting("trainer", "max_length", DEFAULT_MAX_LENGTH)
    if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted < 1:
        raise ConfigError(f"trainer.max_length = {wanted!r} must be a whole number of tokens above 0")
    return min([wanted, *limits])


class TextClassificationTrainer(ComposableTrainer):
    """A sequence classifier fine-tuned on ``(text, label)`` items; ``test()`` returns accuracy."""

    trainer_type = "hf_text_classification"
    lora_task = "SEQ_CLS"
    causal_lm = False

    def __init__(self, model=None, callbacks=None) -> None:
        model = self._hugging_face_model(model)
        self.tokenizer = load_tokenizer(model, self.trainer_type)
        collate = TextCollator(
            self.tokenizer,
            max_length(model, self.tokenizer),
            self.causal_lm,
            None if self.causal_lm else getattr(model.config, "num_labels", None),
        )
        lora = runtime_config.table("parameters", "lora")
        if lora:
            from plato_sedna.trainers.huggingface_lora import with_lora

            model = with_lora(model, lora, self.lora_task)
        super().__init__(
            model=model,
            callbacks=callbacks,
            training_step_strategy=ModelLossStep(),
            data_loader_strategy=CustomCollateFnDataLoaderStrategy(collate_fn=collate),
            testing_strategy=self.testing(collate),
        )

    def testing(self, collate: TextCollator):
        return AccuracyTesting(collate)

    def _hugging_face_model(self, model):
        if model is None:
            from plato.models import registry

            model = registry.get()
        elif not hasattr(model, "parameters") and callable(model):
            model = model()
        if not hasattr(model, "config") or not hasattr(model, "save_pretrained"):
            raise ConfigError(
                f"trainer.type = {self.trainer_type} trains Hugging Face models, not a "
                f"{type(model).__name__}: set trainer.model_name = \"sednaModelResource\" with "
                "[parameters.model] architecture = a Hub id or a save_pretrained folder"
            )
        return model


class CausalLMTrainer(TextClassificationTrainer):
    """A causal language model fine-tuned on the items' texts; ``test()`` returns perplexity."""

    trainer_type = "hf_causal_lm"
    lora_task = "CAUSAL_LM"
    causal_lm = True

    def testing(self, collate: TextCollator):
        return PerplexityTesting(collate)
