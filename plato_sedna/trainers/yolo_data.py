"""The images a Plato sampler picked, as an ultralytics data YAML that ultralytics' own loaders read.

Ultralytics takes a text file of image paths as a split and finds each label file
by swapping the last ``/images/`` for ``/labels/``, as the YOLO layout reader does, so
the sampler's partition (plain Plato) or the pod's whole set (Sedna) is trained on
exactly, with ultralytics' loading and augmentation. Only ``path``, ``train``, ``val``
and ``names`` are written: a dataset YAML's ``download`` script is never carried over.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from plato_sedna.errors import ConfigError, ResourceError


def check_detection_set(dataset, role: str) -> None:
    """Raise a ConfigError unless ``dataset`` is a YOLO-layout dataset of sednaDataResource."""
    if not (hasattr(dataset, "image_path") and hasattr(dataset, "label_rows")):
        raise ConfigError(
            f"trainer.type = yolov5 needs a YOLO-layout {role} set, got {type(dataset).__name__}: "
            'use data.datasource = "sednaDataResource" with an ultralytics data YAML '
            "(format yolo; see docs/annotations-data.md)"
        )


def sampled_indices(dataset, sampler) -> list[int]:
    """The dataset indices a Plato sampler (or a torch sampler) selects; all without one."""
    if sampler is None:
        return list(range(len(dataset)))
    chosen = sampler.get() if hasattr(sampler, "get") else sampler
    indices = getattr(chosen, "indices", None)
    return sorted(int(index) for index in (indices if indices is not None else chosen))


def write_image_list(dataset, indices: Sequence[int], target: Path, role: str) -> Path:
    """Write the absolute paths of the chosen images, one a line, to ``target``."""
    if not indices:
        raise ResourceError(
            f"the {role} set of {dataset.samples.origin.dataset} has no images for this worker"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{Path(dataset.image_path(index)).resolve()}\n" for index in indices]
    target.write_text("".join(lines), encoding="utf-8")
    return target


def write_data_yaml(
    target: Path, train_list: Path, val_list: Path, names: Sequence[str]
) -> Path:
    """An ultralytics data YAML over two image lists (absolute paths, so any cwd works)."""
    import yaml

    config = {
        "path": str(target.parent.resolve()),
        "train": str(train_list.resolve()),
        "val": str(val_list.resolve()),
        "names": dict(enumerate(names)),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return target


def data_yaml_for(dataset, sampler, folder: Path, role: str) -> tuple[Path, int]:
    """``folder/data.yaml`` whose train and val splits are the sampled images of ``dataset``,
    and how many images that is."""
    check_detection_set(dataset, role)
    indices = sampled_indices(dataset, sampler)
    listing = write_image_list(dataset, indices, folder / f"{role}.txt", role)
    return write_data_yaml(
        folder / "data.yaml", listing, listing, dataset.classes
    ), len(indices)
