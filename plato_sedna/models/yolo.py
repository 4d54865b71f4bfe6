"""Ultralytics models: built from a YAML (bundled ``yolov5n.yaml`` or a file), or read from a ``.pt``.

Trust: an ultralytics ``.pt`` pickles whole objects, so ``torch.load(weights_only=True)``
refuses it. Such a file is read only when the user chose an ultralytics
architecture, and only through ultralytics' own loader in its safe mode
(``torch_safe_load(safe_only=True)``: ``weights_only`` unpickling against ultralytics'
allow-list of model classes), never with arbitrary unpickling.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from plato_sedna.errors import ResourceError
from plato_sedna.models.settings import ModelSettings

# ultralytics' guessed task -> model class in ultralytics.nn.tasks
TASK_MODELS: Mapping[str, str] = MappingProxyType(
    {
        "detect": "DetectionModel",
        "segment": "SegmentationModel",
        "classify": "ClassificationModel",
        "pose": "PoseModel",
        "obb": "OBBModel",
    }
)
# A model build must never download assets or pip-install packages.
_OFFLINE_ENV = {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "False", "YOLO_VERBOSE": "False"}


def _import_tasks():
    for name, value in _OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
    from ultralytics.nn import tasks

    return tasks


def build(settings: ModelSettings, checkpoint: Path | None = None):
    """A YAML's model with ``num_classes`` outputs, or the model inside an ultralytics ``.pt``."""
    name = settings.model_config or settings.architecture
    if name.lower().endswith(".pt"):
        path = checkpoint or Path(name)
        if not path.is_file():
            raise ResourceError(
                f"the ultralytics checkpoint {name!r} is not a local file and is never downloaded: "
                "give it as PRETRAINED_MODEL_URL (or [parameters.model] pretrained), or build from "
                'its YAML (architecture = "yolov5s.yaml") instead'
            )
        return with_classes(load_checkpoint(path), settings.num_classes, name)
    tasks = _import_tasks()
    try:
        task = tasks.guess_model_task(name)
        model_class = getattr(tasks, TASK_MODELS.get(task, "DetectionModel"))
        return model_class(name, nc=settings.num_classes, verbose=False)
    except (FileNotFoundError, OSError, KeyError) as error:
        raise ResourceError(f"cannot build the ultralytics model {name!r}: {error}") from None


def load_checkpoint(path: Path):
    """The fp32 model inside the ultralytics checkpoint ``path`` (safe loader, see module docs)."""
    import torch

    from plato_sedna.algorithms import yolo_split

    tasks = _import_tasks()
    torch.serialization.add_safe_globals([yolo_split.CutBinarizer])  # a MistNet-published .pt holds its hooks
    try:
        with _named_pt(Path(path)) as pt_path:
            checkpoint, _ = tasks.torch_safe_load(str(pt_path), safe_only=True)
    except (TypeError, RuntimeError, EOFError, FileNotFoundError) as error:
        raise ResourceError(f"{path} is not a loadable ultralytics checkpoint: {error}") from None
    model = checkpoint.get("ema") or checkpoint.get("model")
    if model is None or not hasattr(model, "state_dict"):
        raise ResourceError(f"{path} is an ultralytics checkpoint without a model")
    yolo_split.strip_cut_hooks(model)  # trained again here: a new MistNet split installs its own
    return model.float()


@contextlib.contextmanager
def _named_pt(path: Path):
    """``path`` under a ``.pt`` name: ultralytics refuses other suffixes, and Sedna's YOLO
    example names its pretrained checkpoint ``yolov5.pth`` (a link, not a copy)."""
    if path.suffix == ".pt":
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="plato-sedna-pt-") as folder:
        link = Path(folder) / f"{path.stem}.pt"
        link.symlink_to(path.resolve())
        yield link


def with_classes(model, num_classes: int | None, source: str):
    """``model``, or for another class count the same architecture with a new head for it.

    Every weight but the detect head's class branches is kept (the weights whose shape
    does not depend on the class count); a warning names both counts.
    """
    own = model.yaml.get("nc")
    if num_classes is None or num_classes == own:
        return model
    import copy

    reheaded = type(model)(copy.deepcopy(model.yaml), nc=num_classes, verbose=False)
    from plato_sedna.models.weights import fit_state_dict

    fit_state_dict(reheaded, model.state_dict(), source)
    return reheaded


def head_of(model):
    """The detect head (the last module) of an ultralytics model, for :mod:`weights`."""
    from plato_sedna.models.weights import Head

    last = len(model.model) - 1
    prefix = f"model.{last}."
    return Head(prefix=prefix, classes=int(model.yaml.get("nc") or 0), count_key=f"{prefix}cv3.0.2.weight")


def is_ultralytics_model(model) -> bool:
    return type(model).__module__.startswith("ultralytics.")


def checkpoint_of(model) -> dict:
    """What ultralytics' loader reads back: ``{"model": <the model, fp32>}`` (pickled)."""
    import copy

    import ultralytics

    return {
        "model": copy.deepcopy(model).float(),
        "version": ultralytics.__version__,
        "train_args": {},
    }
