"""Image folders: one sub-folder per class (optionally under ``train/`` and ``test/`` or ``val/``)."""

from __future__ import annotations

import logging
import os
from array import array
from pathlib import Path

from plato_sedna.datasources.labels import listed
from plato_sedna.datasources.options import ReadOptions
from plato_sedna.datasources.samples import Origin, Samples
from plato_sedna.errors import ResourceError

LOGGER = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
)
TRAIN_FOLDER = "train"
TEST_FOLDERS = ("test", "val")


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def subfolders(folder: Path) -> list[str]:
    """Names of the visible sub-folders, sorted."""
    with os.scandir(folder) as listing:
        return sorted(
            item.name for item in listing if item.is_dir() and item.name[0] != "."
        )


def split_folders(root: Path) -> tuple[Path, Path | None] | None:
    """``(train, test)`` when ``root`` holds ``train/`` (and ``test/`` or ``val/``) of class folders."""
    names = subfolders(root)
    if TRAIN_FOLDER not in names or not subfolders(root / TRAIN_FOLDER):
        return None
    test = next((root / name for name in TEST_FOLDERS if name in names), None)
    return root / TRAIN_FOLDER, test


def has_class_folders(root: Path) -> bool:
    """Whether ``root``'s sub-folders hold images (what detection calls an image-folder dataset)."""
    for name in subfolders(root)[:10]:
        with os.scandir(root / name) as listing:
            if any(is_image_name(item.name) for item in listing):
                return True
    return split_folders(root) is not None


def read_image_folders(root: Path, origin: Origin, options: ReadOptions) -> Samples:
    """Every image under ``root/<class>/``; classes are the folder names, sorted.

    Raises
    ------
    ResourceError
        When there are no class folders, a folder is not one of the declared
        classes, or no images are found.
    """
    classes = _classes(root, origin, options)
    entries: list[str] = []
    targets = array("l")
    ignored: list[str] = []
    for target, name in enumerate(classes):
        if not (root / name).is_dir():
            continue
        for item in sorted(os.listdir(root / name)):
            relative = f"{name}/{item}"
            if not is_image_name(item):
                ignored.append(relative)
                continue
            entries.append(relative)
            targets.append(target)
    if ignored:
        LOGGER.warning(
            "%s: ignored %d file(s) that are not images by their name (%s)",
            origin.where(),
            len(ignored),
            listed(ignored, len(ignored)),
        )
    if not entries:
        raise ResourceError(
            f"{origin.where()} holds no images in its class folders ({', '.join(classes)}); "
            f"the dataset is empty (image names end in {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return Samples(entries, targets, classes, array("l", [0]) * len(entries), origin)


def _classes(root: Path, origin: Origin, options: ReadOptions) -> tuple[str, ...]:
    found = subfolders(root)
    if not found:
        raise ResourceError(
            f"{origin.where()} has no sub-folders; an image-folder dataset keeps each class's "
            "images in a folder named after the class"
        )
    declared = options.hints.classes
    if declared is None and options.hints.num_classes is not None:
        declared = tuple(str(i) for i in range(options.hints.num_classes))
    if declared is None:
        return tuple(found)
    unknown = [name for name in found if name not in declared]
    if unknown:
        raise ResourceError(
            f"{origin.where()}: folder(s) {', '.join(unknown[:5])} are not among the dataset's "
            f"classes ({', '.join(declared[:20])}); rename them or fix the classes"
        )
    return declared
