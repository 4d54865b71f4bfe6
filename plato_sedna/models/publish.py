"""Publishing the global model to ``MODEL_URL`` with ``metrics.json`` beside it.

Writes go to a temporary file in the destination's own folder and are renamed
into place, so a reader never sees a half-written model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from plato_sedna.errors import ResourceError
from plato_sedna.storage.local import write_atomically

METRICS_FILENAME = "metrics.json"
DEFAULT_MODEL_FILENAME = "model.pth"


def model_path(model_url: str) -> Path:
    """The local file a ``MODEL_URL`` names (a folder gets ``model.pth`` inside)."""
    if "://" in model_url and not model_url.startswith("file://"):
        raise ResourceError(
            f"MODEL_URL {model_url} is remote; this version publishes to local paths only"
        )
    path = Path(model_url.removeprefix("file://"))
    if model_url.endswith("/") or path.is_dir():
        return path / DEFAULT_MODEL_FILENAME
    return path


def publish(model_url: str, state_dict: Mapping, metrics: Mapping) -> Path:
    """Write the model's state dict to ``model_url`` and ``metrics.json`` beside it."""
    import torch

    destination = model_path(model_url)
    write_atomically(destination, lambda file: torch.save(dict(state_dict), file))
    encoded = json.dumps(metrics, indent=2, sort_keys=True).encode()
    write_atomically(destination.parent / METRICS_FILENAME, lambda file: file.write(encoded))
    return destination
