"""Model formats the aggregator publishes in, and writing a model in each to a local folder.

A Sedna Model's ``spec.format`` is a free string the GlobalManager never reads; what
each one means for a PyTorch model (``docs/annotations-model.md``):

- ``pth``, ``pt``, ``ckpt``: a state dict through ``torch.save`` (``pt`` for an
  ultralytics model: the ``.pt`` checkpoint ``ultralytics.YOLO()`` loads);
- ``safetensors``: the state dict as a safetensors file;
- ``onnx``: an ONNX graph (``torch.onnx``; needs one sample's shape);
- ``huggingface``: a ``save_pretrained`` folder (Hugging Face models only);
- ``ultralytics``: the ultralytics ``.pt`` checkpoint (ultralytics models only);
- ``pb``: TensorFlow's protocol-buffer graph has no PyTorch writer, so Sedna's ``pb``
  examples get the model as an ONNX graph, itself a protocol buffer, in a ``.pb``
  file, with a warning at start saying so (``metrics.json`` records ``written_as: onnx``).

Anything else is an error at start that names the formats the model can be published in.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from plato_sedna.errors import ResourceError

LOGGER = logging.getLogger(__name__)

FORMATS = ("pth", "safetensors", "onnx", "pb", "huggingface", "ultralytics")
# A Model's spec.format (or a file suffix) -> format; "pt" depends on the model.
ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "pth": "pth",
        "ckpt": "pth",
        "pytorch": "pth",
        "torch": "pth",
        "safetensors": "safetensors",
        "onnx": "onnx",
        "pb": "pb",
        "huggingface": "huggingface",
        "hf": "huggingface",
        "transformers": "huggingface",
        "ultralytics": "ultralytics",
        "yolo": "ultralytics",
    }
)
SUFFIXES: Mapping[str, str] = MappingProxyType(
    {
        "pth": ".pth",
        "safetensors": ".safetensors",
        "onnx": ".onnx",
        "pb": ".pb",
        "ultralytics": ".pt",
    }
)
# Formats whose file holds another format's bytes (recorded in metrics.json).
WRITTEN_AS: Mapping[str, str] = MappingProxyType({"pb": "onnx"})
# Formats each kind of architecture can be published in (the names a Model may use).
KIND_FORMATS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "plato": ("pth", "pt", "ckpt", "safetensors", "onnx", "pb"),
        "torchvision": ("pth", "pt", "ckpt", "safetensors", "onnx", "pb"),
        "ultralytics": ("pt", "ultralytics", "pth", "ckpt", "safetensors", "onnx", "pb"),
        "huggingface": ("huggingface", "pth", "pt", "ckpt", "safetensors"),
    }
)
NEEDS_INPUT_SHAPE = frozenset({"onnx", "pb"})
# One sample's shape for onnx export when nothing gives one: by Plato type, then by kind.
PLATO_INPUT_SHAPES: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {"lenet5": (1, 28, 28), "resnet": (3, 32, 32), "vgg": (3, 32, 32)}
)
KIND_INPUT_SHAPES: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {"torchvision": (3, 224, 224), "ultralytics": (3, 640, 640)}
)
PB_WARNING = (
    "model format 'pb' ({source}): TensorFlow's protocol-buffer graph (GraphDef/SavedModel) "
    "cannot be written for a PyTorch model, so the model is published as an ONNX graph, itself "
    "a protocol buffer, in a .pb file (metrics.json: written_as onnx). Load it with "
    "onnxruntime, or convert it to a TensorFlow SavedModel with onnx-tf; set the Model's "
    "format to onnx, pth, safetensors, ... to say what it holds"
)
ONNX_OPSET = 17


def canonical_format(
    name: str | None, model=None, *, source: str = "the Model's spec.format"
) -> str:
    """The format ``name`` means for ``model`` (None: ``pth``, or the model's own folder format).

    Raises
    ------
    ResourceError
        When the name is no known format, or the model cannot be written in it; the
        message names the formats the model can be published in.
    """
    from plato_sedna.models import yolo

    if name is None or not name.strip():
        return "huggingface" if _is_huggingface(model) else "pth"
    key = name.strip().lower().lstrip(".")
    if key == "pt":
        return "ultralytics" if model is not None and yolo.is_ultralytics_model(model) else "pth"
    if key not in ALIASES:
        can = ", ".join(KIND_FORMATS[_kind_of_model(model)]) if model is not None else _all_names()
        raise ResourceError(
            f"model format {name!r} ({source}) cannot be published; supported: {can}"
        )
    fmt = ALIASES[key]
    if model is not None:
        _check_fits(fmt, model, name)
    return fmt


def _all_names() -> str:
    return "pth, safetensors, onnx, pb, huggingface, ultralytics (also pt, ckpt)"


def _kind_of_model(model) -> str:
    from plato_sedna.models import yolo

    if yolo.is_ultralytics_model(model):
        return "ultralytics"
    return "huggingface" if _is_huggingface(model) else "plato"


def check_publishable(
    fmt: str | None,
    architecture: str | None,
    *,
    framework: str | None = None,
    input_shape: tuple[int, ...] | None = None,
    source: str = "the Model's spec.format",
) -> str | None:
    """Why a model of ``architecture`` cannot be published as ``fmt``, or None when it can.

    Builds nothing: the kind is read off the name (see :mod:`architectures`), as
    ``plato-sedna validate`` and the aggregator's start need. ``architecture`` None (or
    a name no kind knows) is checked as a plain PyTorch model. onnx and pb need one
    sample's shape: ``input_shape``, else the defaults of :func:`default_input_shape`.
    """
    if fmt is None or not fmt.strip():
        return None
    kind = _kind_of_name(architecture, framework)
    key = fmt.strip().lower().lstrip(".")
    allowed = KIND_FORMATS[kind]
    if key not in allowed:
        reason = "is not a model format" if key not in ALIASES and key != "pt" else (
            f"cannot be written for {kind} models"
        )
        return (
            f"model format {fmt!r} ({source}) {reason}; {kind} models"
            f"{f' ({architecture})' if architecture else ''} can be published as: {', '.join(allowed)}"
        )
    if ALIASES.get(key) in NEEDS_INPUT_SHAPE:
        shape = input_shape or default_input_shape(architecture, kind)
        if shape is None:
            return (
                f"model format {fmt!r} ({source}) is an ONNX export, which needs one sample's "
                f"shape for {architecture or 'the model'}: set [parameters.model] input_shape "
                "(e.g. [3, 32, 32]) or the Model annotation plato.sedna.io/input-shape"
            )
    return None


def _kind_of_name(architecture: str | None, framework: str | None) -> str:
    from plato_sedna.models.architectures import kind_of
    from plato_sedna.models.settings import ModelSettings

    if not architecture:
        return "plato"
    try:
        return kind_of(ModelSettings(architecture=architecture, framework=framework))
    except ResourceError:
        return "plato"


def default_input_shape(architecture: str | None, kind: str | None) -> tuple[int, ...] | None:
    """One sample's shape for ONNX export when nothing states it, or None when unknown."""
    if architecture and kind == "plato":
        return PLATO_INPUT_SHAPES.get(architecture.split("_")[0])
    return KIND_INPUT_SHAPES.get(kind or "")


def warn_if_not_what_it_says(fmt: str, source: str, url: str | None = None) -> None:
    """Warn, at start, when the published file is not what its format or url suffix names."""
    if fmt == "pb":
        LOGGER.warning(PB_WARNING.format(source=source))
        return
    named = format_of_url(url or "")
    if named is None:
        return
    compatible = {"pth", "ultralytics"} if named == "pt" else {ALIASES[named]}
    if fmt not in compatible:
        LOGGER.warning(
            "MODEL_URL %s ends in .%s, but the model is published as %s (%s): the file holds %s",
            url,
            named,
            fmt,
            source,
            DESCRIPTIONS[fmt],
        )


DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "pth": "a PyTorch state dict (torch.save)",
        "safetensors": "a safetensors state dict",
        "onnx": "an ONNX graph",
        "pb": "an ONNX graph",
        "huggingface": "a save_pretrained folder",
        "ultralytics": "an ultralytics .pt checkpoint",
    }
)


def _check_fits(fmt: str, model, name: str) -> None:
    kind = _kind_of_model(model)
    only = {"huggingface": "Hugging Face", "ultralytics": "ultralytics"}
    allowed = KIND_FORMATS[kind]
    if fmt in only and kind != fmt:
        reason = f"only {only[fmt]} models"
    elif fmt in NEEDS_INPUT_SHAPE and kind == "huggingface":
        reason = "a Hugging Face model takes token ids, which this ONNX export does not"
    else:
        return
    raise ResourceError(
        f"a {type(model).__name__} cannot be published as {name!r}: {reason}; it can be "
        f"published as: {', '.join(allowed)}"
    )


def _is_huggingface(model) -> bool:
    return model is not None and hasattr(model, "save_pretrained") and hasattr(model, "config")


def format_of_url(url: str) -> str | None:
    """The format a URL's suffix names (``.safetensors`` -> safetensors), or None."""
    suffix = Path(url.rstrip("/")).suffix.lower().lstrip(".")
    return suffix if suffix in ALIASES or suffix == "pt" else None


def write(model, fmt: str, target: Path, input_shape: tuple[int, ...] | None = None) -> None:
    """Write ``model`` in ``fmt`` at ``target`` (a file, or a folder for ``huggingface``)."""
    if fmt == "pth":
        import torch

        torch.save(_cpu_state(model), target)
    elif fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(_cpu_state(model), target)
    elif fmt in ("onnx", "pb"):
        _write_onnx(model, target, input_shape)
    elif fmt == "huggingface":
        from plato_sedna.models import huggingface

        target.mkdir(parents=True, exist_ok=True)
        huggingface.save_folder(model, target)
    elif fmt == "ultralytics":
        import torch

        from plato_sedna.models import yolo

        torch.save(yolo.checkpoint_of(model), target)
    else:
        raise ResourceError(f"unknown model format {fmt!r}; supported: {', '.join(FORMATS)}")


def _cpu_state(model) -> dict:
    """Contiguous CPU tensors, shared storage split (safetensors refuses shared tensors)."""
    return {
        key: value.detach().cpu().contiguous().clone() for key, value in model.state_dict().items()
    }


def _write_onnx(model, target: Path, input_shape: tuple[int, ...] | None) -> None:
    import copy

    import torch

    if input_shape is None:
        raise ResourceError(
            "publishing as onnx needs one sample's shape: set [parameters.model] input_shape "
            "(e.g. [1, 28, 28]) or the Model annotation plato.sedna.io/input-shape"
        )
    exported = copy.deepcopy(model).cpu().eval()
    sample = torch.zeros((1, *input_shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        try:
            torch.onnx.export(
                exported,
                (sample,),
                str(target),
                dynamo=False,
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                opset_version=ONNX_OPSET,
            )
        except Exception as error:  # noqa: BLE001 - any export failure means: not exportable
            raise ResourceError(
                f"the {type(model).__name__} cannot be exported to onnx with input shape "
                f"{list(input_shape)}: {type(error).__name__}: {error}"
            ) from None


def file_name(base_name: str, fmt: str) -> str:
    """``base_name`` with the format's suffix (a folder name for ``huggingface``)."""
    stem = Path(base_name).stem if Path(base_name).suffix else base_name
    return stem + SUFFIXES.get(fmt, "")
