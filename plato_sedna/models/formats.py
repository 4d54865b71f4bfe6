"""Model formats the aggregator publishes in, and writing a model in each to a local folder.

``pth`` (a state dict through ``torch.save``), ``safetensors``, ``onnx`` (``torch.onnx``),
``huggingface`` (a ``save_pretrained`` folder) and ``ultralytics`` (a ``.pt`` that
ultralytics' loader reads).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from plato_sedna.errors import ResourceError

FORMATS = ("pth", "safetensors", "onnx", "huggingface", "ultralytics")
# A Model's spec.format (or a file suffix) -> format; "pt" depends on the model.
ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "pth": "pth",
        "ckpt": "pth",
        "pytorch": "pth",
        "torch": "pth",
        "safetensors": "safetensors",
        "onnx": "onnx",
        "huggingface": "huggingface",
        "hf": "huggingface",
        "transformers": "huggingface",
        "ultralytics": "ultralytics",
        "yolo": "ultralytics",
    }
)
SUFFIXES: Mapping[str, str] = MappingProxyType(
    {"pth": ".pth", "safetensors": ".safetensors", "onnx": ".onnx", "ultralytics": ".pt"}
)
ONNX_OPSET = 17


def canonical_format(
    name: str | None, model=None, *, source: str = "the Model's spec.format"
) -> str:
    """The format ``name`` means for ``model`` (None: ``pth``, or the model's own folder format).

    Raises
    ------
    ResourceError
        When the name is no known format, or the model cannot be written in it.
    """
    from plato_sedna.models import yolo

    if name is None or not name.strip():
        return "huggingface" if _is_huggingface(model) else "pth"
    key = name.strip().lower().lstrip(".")
    if key == "pt":
        return "ultralytics" if model is not None and yolo.is_ultralytics_model(model) else "pth"
    if key not in ALIASES:
        raise ResourceError(
            f"model format {name!r} ({source}) cannot be published; supported: {', '.join(FORMATS)} "
            "(also pt, ckpt)"
        )
    fmt = ALIASES[key]
    if model is not None:
        _check_fits(fmt, model, name)
    return fmt


def _check_fits(fmt: str, model, name: str) -> None:
    from plato_sedna.models import yolo

    if fmt == "huggingface" and not _is_huggingface(model):
        raise ResourceError(
            f"a {type(model).__name__} cannot be published as {name!r}: only Hugging Face models"
        )
    if fmt == "ultralytics" and not yolo.is_ultralytics_model(model):
        raise ResourceError(
            f"a {type(model).__name__} cannot be published as {name!r}: only ultralytics models"
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
    elif fmt == "onnx":
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
