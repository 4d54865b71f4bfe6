"""``trainer.model_name = "sednaModelResource"``: the model a Sedna Model resource names.

The architecture is a Plato registry name (``lenet5``, ``resnet_18``, ...), taken
from ``[parameters.model] architecture`` in the config, else from the Model
resource's ``plato.sedna.io/model-name`` annotation. Other ``[parameters.model]``
keys (``num_classes``, ...) go to the architecture. Pretrained weights, when
``PRETRAINED_MODEL_URL`` points at a local PyTorch state dict, are loaded with
the safe loader.
"""

from __future__ import annotations

import logging
from pathlib import Path

from plato_sedna import resources, runtime_config
from plato_sedna.errors import ResourceError

LOGGER = logging.getLogger(__name__)

ARCHITECTURE_KEY = "architecture"
ARCHITECTURE_ANNOTATION = "plato.sedna.io/model-name"


def resolve_architecture(model_parameters: dict) -> str:
    """Return the Plato registry name of the architecture to build."""
    architecture = model_parameters.get(ARCHITECTURE_KEY)
    if architecture:
        return str(architecture)
    model = resources.aggregation_model()
    if model is not None and model.annotations.get(ARCHITECTURE_ANNOTATION):
        return model.annotations[ARCHITECTURE_ANNOTATION]
    named = f" Model {model.namespace}/{model.name}" if model is not None else " the Model resource"
    raise ResourceError(
        "trainer.model_name = sednaModelResource needs an architecture: set "
        '[parameters.model] architecture = "lenet5" (any Plato model name) in the config, '
        f"or annotate{named} with {ARCHITECTURE_ANNOTATION}"
    )


def _build(architecture: str, model_parameters: dict):
    from plato.models import registry

    model_type = str(model_parameters.pop("architecture_type", architecture.split("_")[0]))
    if model_type not in registry.registered_models and model_type not in registry.registered_factories:
        known = sorted(set(registry.registered_models) | set(registry.registered_factories))
        raise ResourceError(
            f"model architecture {architecture!r} is not a Plato model; known types: {', '.join(known)}"
        )
    return registry.get(model_name=architecture, model_type=model_type, model_params=model_parameters)


def load_pretrained(model, url: str) -> None:
    """Load a local state dict into ``model``; mismatches are an error listing the keys."""
    import torch

    path = Path(url.removeprefix("file://"))
    if path.is_dir():
        candidates = sorted(path.glob("*.pth")) + sorted(path.glob("*.pt"))
        if not candidates:
            raise ResourceError(f"pretrained model folder {path} holds no .pth/.pt file")
        path = candidates[0]
    if not path.is_file():
        raise ResourceError(f"pretrained model {path} does not exist (PRETRAINED_MODEL_URL)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own_shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    wrong_shapes = [
        f"{key} {tuple(value.shape)} != {own_shapes[key]}"
        for key, value in state.items()
        if key in own_shapes and tuple(value.shape) != own_shapes[key]
    ]
    missing = sorted(set(own_shapes) - set(state))
    unexpected = sorted(set(state) - set(own_shapes))
    if wrong_shapes or missing or unexpected:
        raise ResourceError(
            f"pretrained model {path} does not fit the architecture: "
            f"missing keys {missing[:10]}, unexpected keys {unexpected[:10]}, "
            f"wrong shapes {wrong_shapes[:10]}"
        )
    model.load_state_dict(state)
    LOGGER.info("Loaded pretrained weights from %s", path)


class ModelFactory:
    """Plato model factory for ``sednaModelResource`` (``registered_factories``)."""

    @staticmethod
    def get(model_name: str | None = None, **model_parameters):
        parameters = dict(model_parameters)
        architecture = resolve_architecture(parameters)
        parameters.pop(ARCHITECTURE_KEY, None)
        model = _build(architecture, parameters)
        pretrained_url = runtime_config.sedna("pretrained_model_url")
        if pretrained_url:
            load_pretrained(model, pretrained_url)
        return model
