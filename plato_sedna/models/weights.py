"""Pretrained weights: read a state dict from a local file or folder, and fit it to a model.

Formats: PyTorch state dicts and checkpoints (``.pth``, ``.pt``, ``.ckpt``; a
``state_dict``/``model_state_dict``/``model`` entry is unwrapped) read with
``torch.load(weights_only=True)``, safetensors, Hugging Face folders, and
ultralytics ``.pt`` for ultralytics architectures (see :mod:`plato_sedna.models.yolo`).
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from plato_sedna.errors import ResourceError

LOGGER = logging.getLogger(__name__)

TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
SAFETENSORS_SUFFIX = ".safetensors"
# Entries of a checkpoint dict that hold the state dict, first match wins.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "ema")
# Prefixes training wrappers add to every key (Lightning, DataParallel).
KEY_PREFIXES = ("model.", "module.")
_LISTED = 10


class PickledObjects(ResourceError):
    """The file holds pickled Python objects, which the safe loader refuses."""


def weights_file(folder: Path) -> Path:
    """The weights file in ``folder``: safetensors first, then PyTorch files."""
    for pattern in (f"*{SAFETENSORS_SUFFIX}", *(f"*{suffix}" for suffix in TORCH_SUFFIXES)):
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    raise ResourceError(
        f"the pretrained model folder {folder} holds no weights file "
        f"({SAFETENSORS_SUFFIX}, {', '.join(TORCH_SUFFIXES)})"
    )


def read_state_dict(path: Path) -> dict:
    """The tensors stored at ``path`` (a file, or a folder holding one), safely.

    Raises
    ------
    ResourceError
        When the file is corrupt or truncated, holds pickled objects, or holds no tensors.
    """
    if path.is_dir():
        path = weights_file(path)
    if path.suffix == SAFETENSORS_SUFFIX:
        return _read_safetensors(path)
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise PickledObjects(
            f"{path} holds pickled Python objects, not only tensors, and is not loaded (arbitrary "
            "code could run). Save model.state_dict() instead; an ultralytics .pt is read only "
            "for an ultralytics architecture"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, IndexError, KeyError) as error:
        # torch's safe unpickler fails in many ways on bytes that are no torch file
        raise ResourceError(f"{path} is corrupt or truncated and cannot be read: {error!r}") from None
    return _unwrap(loaded, path)


def _read_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise ResourceError(f"{path} is corrupt or truncated and cannot be read: {error}") from None


def _unwrap(loaded, path: Path) -> dict:
    import torch

    while isinstance(loaded, Mapping) and not _all_tensors(loaded):
        inner = next(
            (
                loaded[key]
                for key in WRAPPER_KEYS
                if isinstance(loaded.get(key), (Mapping, torch.nn.Module))
            ),
            None,
        )
        if inner is None:
            break
        loaded = inner
    if isinstance(loaded, torch.nn.Module):
        # Only classes on torch's safe-globals allow-list unpickle under weights_only
        # (ultralytics adds its model classes there once its own loader has run).
        loaded = loaded.state_dict()
    if not isinstance(loaded, Mapping) or not loaded or not _all_tensors(loaded):
        raise ResourceError(
            f"{path} holds no state dict (a mapping of names to tensors, possibly under "
            f"{', '.join(WRAPPER_KEYS)})"
        )
    return {str(key): value for key, value in loaded.items() if isinstance(value, torch.Tensor)}


def _all_tensors(mapping: Mapping) -> bool:
    import torch

    return all(isinstance(value, torch.Tensor) for value in mapping.values())


def fit_state_dict(model, state: Mapping, source: str) -> None:
    """Load ``state`` into ``model`` strictly; mismatches are an error listing the keys.

    One mismatch is allowed: a head for another class count (only the output layer's
    shapes differ). The model keeps its own head for its class count, with a warning
    naming both counts, and every other weight is loaded. Keys prefixed by a training wrapper (``model.``, ``module.``) are matched without it.

    Raises
    ------
    ResourceError
        Naming ``source`` and the missing, unexpected and wrongly shaped keys.
    """
    own = model.state_dict()
    state = _strip_prefix(state, own)
    wrong = [
        key for key, value in state.items() if key in own and tuple(value.shape) != tuple(own[key].shape)
    ]
    wrong_shapes = [f"{key} {tuple(state[key].shape)} != {tuple(own[key].shape)}" for key in wrong]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    head = head_of(model)
    if wrong and not missing and not unexpected and head is not None and head.holds(wrong):
        _load_reheaded(model, state, head, source)
        return
    if wrong_shapes or missing or unexpected:
        raise ResourceError(
            f"the pretrained model {source} does not fit the architecture: "
            f"{len(missing)} missing keys {missing[:_LISTED]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:_LISTED]}, "
            f"{len(wrong_shapes)} wrong shapes {wrong_shapes[:_LISTED]}"
        )
    model.load_state_dict(dict(state))


@dataclass(frozen=True)
class Head:
    """A model's output layer: the state-dict prefix of its keys and how many classes it has."""

    prefix: str
    classes: int
    # The key whose first dimension is the class count (a Linear's weight, a detect head's last conv).
    count_key: str

    def holds(self, keys) -> bool:
        return all(key.startswith(self.prefix) for key in keys)

    def classes_in(self, state: Mapping) -> int | None:
        """The class count of a state dict's head, or None when it has no such key."""
        value = state.get(self.count_key)
        return int(value.shape[0]) if value is not None and value.dim() >= 1 else None


def head_of(model) -> Head | None:
    """The output layer of a classifier (its last ``Linear``) or of an ultralytics detector."""
    import torch

    from plato_sedna.models import yolo

    if yolo.is_ultralytics_model(model):
        return yolo.head_of(model)
    last = None
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            last = (name, module)
    if last is None or not last[0]:
        return None
    name, layer = last
    return Head(prefix=f"{name}.", classes=layer.out_features, count_key=f"{name}.weight")


def _load_reheaded(model, state: Mapping, head: Head, source: str) -> None:
    """Load all but the head, which keeps its fresh weights for the model's class count."""
    found = head.classes_in(state)
    LOGGER.warning(
        "The pretrained model %s has %s classes and this model %d: its output layer (%s*) is "
        "replaced by a new one for %d classes; every other weight is loaded",
        source,
        found if found is not None else "a different number of",
        head.classes,
        head.prefix,
        head.classes,
    )
    own = model.state_dict()
    kept = {
        key: value
        for key, value in state.items()
        if not (key.startswith(head.prefix) and tuple(value.shape) != tuple(own[key].shape))
    }
    model.load_state_dict({**own, **kept})


def pretrained_class_count(model, path: Path, kind: str) -> int | None:
    """The class count of the head of the weights at ``path``, when it differs from ``model``'s."""
    head = head_of(model)
    if head is None or kind == "huggingface":
        return None
    state = _strip_prefix(_read(path, kind), model.state_dict())
    found = head.classes_in(state)
    return found if found is not None and found != head.classes else None


def _read(path: Path, kind: str) -> dict:
    from plato_sedna.models import yolo

    try:
        return read_state_dict(path)
    except PickledObjects:
        if kind != "ultralytics":
            raise
        return yolo.load_checkpoint(path).state_dict()


def _strip_prefix(state: Mapping, own: Mapping) -> Mapping:
    if set(state) <= set(own):
        return state
    for prefix in KEY_PREFIXES:
        if all(key.startswith(prefix) for key in state):
            stripped = {key.removeprefix(prefix): value for key, value in state.items()}
            if set(stripped) <= set(own):
                return stripped
    return state


def load_pretrained(model, path: Path, kind: str, source: str):
    """``model`` with the weights at the local ``path`` (``source`` names the URL); may return a new model."""
    from plato_sedna.models import huggingface

    if kind == "huggingface" and path.is_dir() and huggingface.is_folder(path):
        model = huggingface.load_folder(model, path)
    else:
        fit_state_dict(model, _read(path, kind), source)
    LOGGER.info("Loaded pretrained weights from %s", source)
    return model
