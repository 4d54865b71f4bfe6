"""LoRA adapters (peft) on a Hugging Face model, and the weights such a model exchanges.

``[parameters.lora]`` (as in Plato's own Hugging Face model) holds ``peft.LoraConfig``
arguments, e.g. ``r = 4``, ``lora_alpha = 8``, ``target_modules = ["query", "value"]``;
``task_type`` defaults to the trainer's task. With adapters, only they (and the
task head peft keeps trainable) travel between trainers and the aggregator.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from plato_sedna.errors import ConfigError


def with_lora(model, options: Mapping[str, Any], task_type: str):
    """``model`` wrapped by peft with the LoRA adapters ``options`` describe.

    Raises
    ------
    ConfigError
        When ``[parameters.lora]`` holds an unknown key or a value peft refuses.
    """
    from peft import LoraConfig, get_peft_model

    arguments = {"task_type": task_type, **options}
    if isinstance(arguments.get("target_modules"), tuple):
        arguments["target_modules"] = list(arguments["target_modules"])
    try:
        config = LoraConfig(**arguments)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
            return get_peft_model(model, config)
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"[parameters.lora] {dict(options)} is not a valid LoRA setting for a "
            f"{type(model).__name__}: {error}. Keys are peft.LoraConfig arguments (r, lora_alpha, "
            "lora_dropout, target_modules such as ['query', 'value'])"
        ) from None


def has_lora(model) -> bool:
    return hasattr(model, "peft_config")


def exchanged_weights(model) -> dict:
    """The CPU tensors a round exchanges: the adapters with a LoRA model, else every weight."""
    if has_lora(model):
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(model)
    else:
        state = model.state_dict()
    return {name: tensor.detach().cpu() for name, tensor in state.items()}


def load_exchanged_weights(model, weights: Mapping) -> None:
    """Load what :func:`exchanged_weights` of another copy of ``model`` returned."""
    if has_lora(model):
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, dict(weights))
    else:
        model.load_state_dict(weights, strict=True)
