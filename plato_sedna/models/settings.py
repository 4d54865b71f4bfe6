"""ModelSettings: what to build, from the config, the Model's annotations or its spec fields.

Each setting is taken from the first source that has it: the Plato config's
``[parameters.model]`` table, the Model resource's ``plato.sedna.io/*``
annotations, then the seed proposal's spec fields (``model_name``, ``framework``,
``model_config``, ``pretrained``, ``format``) where the cluster runs the extended
CRDs. ``docs/annotations-model.md`` lists the annotations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from plato_sedna.errors import ConfigError, ResourceError

ANNOTATION_PREFIX = "plato.sedna.io/"

# setting -> (config key in [parameters.model], annotation, seed-proposal spec field)
SOURCES: Mapping[str, tuple[str, str, str | None]] = MappingProxyType(
    {
        "architecture": ("architecture", "model-name", "model_name"),
        "framework": ("framework", "framework", "framework"),
        "task": ("task", "task", None),
        "num_classes": ("num_classes", "num-classes", "num_classes"),
        "pretrained": ("pretrained", "pretrained", "pretrained"),
        "format": ("format", "format", None),
        "model_config": ("model_config", "model-config", "model_config"),
        "input_shape": ("input_shape", "input-shape", None),
    }
)
# Keys of [parameters.model] that are settings, not arguments of the architecture.
SETTING_KEYS = frozenset(config_key for config_key, _, _ in SOURCES.values()) | {
    "architecture_type"
}
_TRUE = ("true", "yes", "1", "on")
_FALSE = ("false", "no", "0", "off")


@dataclass(frozen=True)
class ModelSettings:
    """What ``sednaModelResource`` builds and where its weights come from.

    Attributes
    ----------
    architecture : str
        A Plato registry name, torchvision name, Hugging Face id or folder,
        ultralytics YAML or checkpoint.
    framework : str | None
        plato, torchvision, huggingface or ultralytics; None: inferred from the name.
    task : str | None
        Hugging Face task (``sequence-classification``, ``causal-lm``, ...).
    num_classes : int | None
        Output classes, when the architecture takes them.
    pretrained : bool | str | None
        True: load weights (PRETRAINED_MODEL_URL, else the Model's url, else the
        Hugging Face id's own); False: never; a URL: from there; None: from
        PRETRAINED_MODEL_URL when it is set.
    format : str | None
        The format the model is published in (the Model's ``spec.format`` otherwise).
    model_config : str | None
        An ultralytics YAML or Hugging Face config the architecture is built from.
    input_shape : tuple[int, ...] | None
        One sample's shape, for ONNX export.
    arguments : Mapping[str, Any]
        The other ``[parameters.model]`` keys, passed to the architecture.
    sources : Mapping[str, str]
        Where each setting came from, for messages.
    """

    architecture: str
    framework: str | None = None
    task: str | None = None
    num_classes: int | None = None
    pretrained: bool | str | None = None
    format: str | None = None
    model_config: str | None = None
    input_shape: tuple[int, ...] | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)


def resolve_settings(
    model_parameters: Mapping[str, Any],
    annotations: Mapping[str, str] | None = None,
    spec_fields: Mapping[str, Any] | None = None,
    *,
    model_ref: str | None = None,
    dataset_annotations: Mapping[str, str] | None = None,
) -> ModelSettings:
    """Merge the three sources, highest first; ``dataset_annotations`` may give ``num_classes``.

    Raises
    ------
    ResourceError
        When no source names an architecture, or a value does not parse.
    """
    annotations = annotations or {}
    spec_fields = spec_fields or {}
    found: dict[str, Any] = {}
    sources: dict[str, str] = {}
    named = f"Model {model_ref}" if model_ref else "the Model resource"
    for setting, (config_key, annotation, spec_key) in SOURCES.items():
        candidates = [
            (model_parameters.get(config_key), f"[parameters.model] {config_key}"),
            (
                annotations.get(ANNOTATION_PREFIX + annotation),
                f"{named} annotation {ANNOTATION_PREFIX}{annotation}",
            ),
            (spec_fields.get(spec_key) if spec_key else None, f"{named} spec.{spec_key}"),
        ]
        if setting == "num_classes" and dataset_annotations:
            key = ANNOTATION_PREFIX + annotation
            candidates.append((dataset_annotations.get(key), f"the Dataset annotation {key}"))
        for value, source in candidates:
            if value is not None and value != "":
                found[setting], sources[setting] = value, source
                break
    if "architecture" not in found:
        raise ResourceError(
            "trainer.model_name = sednaModelResource needs an architecture: set "
            '[parameters.model] architecture = "lenet5" (a Plato, torchvision, Hugging Face or '
            f"ultralytics model) in the config, or annotate {named} with "
            f"{ANNOTATION_PREFIX}model-name"
        )
    return ModelSettings(
        architecture=str(found["architecture"]),
        framework=_lower(found.get("framework")),
        task=_lower(found.get("task")),
        num_classes=_parse(found, sources, "num_classes", _positive_int),
        pretrained=_parse(found, sources, "pretrained", _pretrained),
        format=_lower(found.get("format")),
        model_config=_text(found.get("model_config")),
        input_shape=_parse(found, sources, "input_shape", _shape),
        arguments={k: v for k, v in model_parameters.items() if k not in SETTING_KEYS},
        sources=MappingProxyType(sources),
    )


def _parse(found: dict, sources: dict, setting: str, parser):
    if setting not in found:
        return None
    try:
        return parser(found[setting])
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"{sources[setting]} = {found[setting]!r} is not valid: {error}"
        ) from None


def _lower(value: Any) -> str | None:
    return None if value is None else str(value).strip().lower()


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _positive_int(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("expected a whole number above 0")
    return number


def _pretrained(value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    return text  # a URL or path


def _shape(value: Any) -> tuple[int, ...]:
    items = value.replace("x", ",").split(",") if isinstance(value, str) else list(value)
    shape = tuple(int(item) for item in items if str(item).strip())
    if not shape or min(shape) < 1:
        raise ValueError("expected dimensions such as [3, 32, 32] or '3,32,32'")
    return shape
