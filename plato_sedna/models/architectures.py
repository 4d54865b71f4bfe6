"""Which kind of architecture a name is, and building it offline with no weights downloaded.

Kinds: ``plato`` (Plato's model registry: ``lenet5``, ``resnet_18``, ``vgg_16``),
``torchvision`` (``resnet18``, ``mobilenet_v3_small``, built with ``weights=None``),
``huggingface`` (a model id or a local ``save_pretrained`` folder) and
``ultralytics`` (a YAML such as ``yolov5n.yaml``, or a ``.pt`` checkpoint).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from plato_sedna.errors import ResourceError
from plato_sedna.models.settings import ModelSettings

KINDS = ("plato", "torchvision", "huggingface", "ultralytics")
ULTRALYTICS_SUFFIXES = (".yaml", ".yml", ".pt")
# Factories the plugin itself registers: not architectures.
_OWN_FACTORIES = frozenset({"sednaModelResource"})
_NAMES_SHOWN = 25


def plato_types() -> list[str]:
    """The model types Plato's registry builds (``resnet`` covers ``resnet_18``, ...)."""
    from plato.models import registry

    names = set(registry.registered_models) | set(registry.registered_factories)
    return sorted(names - _OWN_FACTORIES)


def torchvision_names() -> list[str]:
    import torchvision.models

    return list(torchvision.models.list_models())


def _plato_type(settings: ModelSettings) -> str:
    return str(settings.arguments.get("architecture_type") or settings.architecture.split("_")[0])


def kind_of(settings: ModelSettings) -> str:
    """The kind of ``settings.architecture``: the framework setting, else inferred from the name.

    Raises
    ------
    ResourceError
        When the framework is not a known kind, or the name matches no kind; the
        message lists the kinds and the known names.
    """
    if settings.framework is not None:
        framework = {
            "pytorch": "plato",
            "torch": "plato",
            "hf": "huggingface",
            "yolo": "ultralytics",
        }.get(settings.framework, settings.framework)
        if framework not in KINDS:
            raise ResourceError(
                f"framework {settings.framework!r} ({settings.sources.get('framework')}) is not "
                f"one of {', '.join(KINDS)}"
            )
        return framework
    name = settings.architecture
    if name.lower().endswith(ULTRALYTICS_SUFFIXES):
        return "ultralytics"
    if (Path(name) / "config.json").is_file():
        return "huggingface"
    if _plato_type(settings) in plato_types():
        return "plato"
    if name in torchvision_names():
        return "torchvision"
    if "/" in name and not Path(name).exists():
        return "huggingface"
    raise ResourceError(unknown_architecture_message(settings))


def unknown_architecture_message(settings: ModelSettings) -> str:
    torchvision = torchvision_names()
    shown = ", ".join(torchvision[:_NAMES_SHOWN])
    return (
        f"model architecture {settings.architecture!r} "
        f"({settings.sources.get('architecture', 'config')}) is unknown. Known kinds: "
        f"plato (types {', '.join(plato_types())}; e.g. lenet5, resnet_18, vgg_16); "
        f"torchvision ({shown}, ... {len(torchvision)} in all); "
        "huggingface (a model id such as org/name, or a local save_pretrained folder; "
        "set framework = \"huggingface\" for an id without '/'); "
        "ultralytics (a YAML such as yolov5n.yaml, or a .pt checkpoint). "
        "Set [parameters.model] framework (or the plato.sedna.io/framework annotation) "
        "to choose the kind"
    )


def takes_num_classes(settings: ModelSettings) -> bool:
    """Whether the architecture has a class count to set (a classifier's outputs, a detector's nc).

    Plato models whose constructor takes ``num_classes`` (``lenet5``, ``resnet_18``,
    ``vgg_16``, ``multilayer``), torchvision models and ultralytics models do; Hugging
    Face models (their ``num_labels`` is the task's) are left to what states it.
    """
    try:
        kind = kind_of(settings)
    except ResourceError:
        return False
    if kind in ("torchvision", "ultralytics"):
        return True
    if kind != "plato":
        return False
    from plato.models import registry

    model_type = _plato_type(settings)
    builder = registry.registered_models.get(model_type)
    if builder is None and model_type in registry.registered_factories:
        builder = registry.registered_factories[model_type].get
    if builder is None:
        return False
    try:
        return "num_classes" in inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return False


def build(settings: ModelSettings, checkpoint: Path | None = None):
    """Build the architecture ``settings`` names, with random weights (no download).

    ``checkpoint`` is a local ultralytics ``.pt`` when the architecture is one.
    """
    kind = kind_of(settings)
    if kind == "ultralytics":
        from plato_sedna.models import yolo

        return yolo.build(settings, checkpoint)
    if kind == "huggingface":
        from plato_sedna.models import huggingface

        return huggingface.build(settings)
    if kind == "torchvision":
        return _build_torchvision(settings)
    return _build_plato(settings)


def _with_num_classes(settings: ModelSettings) -> dict[str, Any]:
    arguments = dict(settings.arguments)
    arguments.pop("architecture_type", None)
    if settings.num_classes is not None:
        arguments["num_classes"] = settings.num_classes
    return arguments


def _build_plato(settings: ModelSettings):
    from plato.models import registry

    model_type = _plato_type(settings)
    if model_type not in plato_types():
        raise ResourceError(unknown_architecture_message(settings))
    if model_type == "dcgan":  # Plato's is not an nn.Module: the plugin's holds the same networks
        from plato_sedna.models.dcgan import Dcgan

        return Dcgan()
    # Plato's own registry.get() would construct Config(); its two lookups need none.
    if model_type in registry.registered_models:
        return registry.registered_models[model_type](**_with_num_classes(settings))
    return registry.registered_factories[model_type].get(
        model_name=settings.architecture, **_with_num_classes(settings)
    )


def _build_torchvision(settings: ModelSettings):
    import torchvision.models

    if settings.architecture not in torchvision_names():
        raise ResourceError(unknown_architecture_message(settings))
    return torchvision.models.get_model(
        settings.architecture, weights=None, **_with_num_classes(settings)
    )
