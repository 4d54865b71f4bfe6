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

    Keys prefixed by a training wrapper (``model.``, ``module.``) are matched without it.

    Raises
    ------
    ResourceError
        Naming ``source`` and the missing, unexpected and wrongly shaped keys.
    """
    own = model.state_dict()
    state = _strip_prefix(state, own)
    wrong_shapes = [
        f"{key} {tuple(value.shape)} != {tuple(own[key].shape)}"
        for key, value in state.items()
        if key in own and tuple(value.shape) != tuple(own[key].shape)
    ]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if wrong_shapes or missing or unexpected:
        raise ResourceError(
            f"the pretrained model {source} does not fit the architecture: "
            f"{len(missing)} missing keys {missing[:_LISTED]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:_LISTED]}, "
            f"{len(wrong_shapes)} wrong shapes {wrong_shapes[:_LISTED]}"
        )
    model.load_state_dict(dict(state))


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
    from plato_sedna.models import huggingface, yolo

    if kind == "huggingface" and path.is_dir() and huggingface.is_folder(path):
        model = huggingface.load_folder(model, path)
    else:
        try:
            state = read_state_dict(path)
        except PickledObjects:
            if kind != "ultralytics":
                raise
            state = yolo.load_checkpoint(path).state_dict()
        fit_state_dict(model, state, source)
    LOGGER.info("Loaded pretrained weights from %s", source)
    return model
