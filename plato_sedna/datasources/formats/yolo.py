"""The ultralytics (YOLO) layout: a data YAML naming ``images/`` folders or lists, ``labels/`` beside them.

A folder without a data YAML is read too when it (or its one sub-folder: coco128
unpacks as ``coco128/images/train2017``) holds ``images/`` beside ``labels/``: the
splits are the folders under ``images/``, the classes the Dataset's (``num-classes``,
``classes``) or else as many as the largest class id in the labels says.

Each sample is an image with its label rows (``class cx cy w h``, normalised). Its
target, for samplers and the stratified split, is the class it has most boxes of
(the lowest on a tie; 0 for an image without boxes).
"""

from __future__ import annotations

import logging
import os
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from plato_sedna.datasources.entries import escapes_root
from plato_sedna.datasources.formats.folders import is_image_name, subfolders
from plato_sedna.datasources.formats.single_file import single_file
from plato_sedna.datasources.formats.txt import read_txt_index
from plato_sedna.datasources.options import ReadOptions
from plato_sedna.datasources.samples import Origin, Samples
from plato_sedna.errors import ResourceError

LOGGER = logging.getLogger(__name__)

YAML_SUFFIXES = (".yaml", ".yml")
IMAGES_FOLDER = "images"
LABELS_FOLDER = "labels"
# Split folders under images/ (ultralytics' own names, coco's train2017/val2017), by prefix.
_TEST_SPLIT_PREFIXES = ("val", "valid", "test")


@dataclass(frozen=True)
class YoloLayout:
    """An ultralytics dataset as a trainer needs it.

    Attributes
    ----------
    data_yaml : Path
        The data YAML as found (it may sit in the read-only download cache); the
        dataset's folder itself when it has none (``config`` is then made up).
    root : Path
        The folder its ``train``/``val`` entries are relative to.
    config : dict
        The YAML's content.
    names : tuple[str, ...]
        Class names, by class index.
    """

    data_yaml: Path
    root: Path
    config: dict
    names: tuple[str, ...]

    def resolved_config(self) -> dict:
        """The data config with ``path`` absolute, so it works from any folder."""
        return {
            **self.config,
            "path": str(self.root),
            "names": dict(enumerate(self.names)),
        }

    def write_data_yaml(self, destination: Path) -> Path:
        """Write :meth:`resolved_config` to ``destination`` (e.g. a writable run folder)."""
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(yaml.safe_dump(self.resolved_config(), sort_keys=False))
        return destination


def label_path(image: Path) -> Path:
    """Where ultralytics keeps an image's labels: the last ``/images/`` becomes ``/labels/``, ``.txt``."""
    text = str(image)
    marker = f"{os.sep}images{os.sep}"
    if marker in text:
        head, tail = text.rsplit(marker, 1)
        text = f"{head}{os.sep}labels{os.sep}{tail}"
    return Path(os.path.splitext(text)[0] + ".txt")


def read_label_rows(
    path: Path, class_count: int, dataset: str
) -> list[tuple[float, ...]]:
    """The rows of a label file (none when it is missing: an image without objects).

    Raises
    ------
    ResourceError
        For a row that is not ``class x y w h`` (or a polygon), or a class out of range.
    """
    if not path.is_file():
        return []
    where = Origin(dataset, str(path), str(path.parent))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ResourceError(
            f"{where.where()} cannot be read as a text label file ({error}); "
            "write one 'class x y w h' row per object, UTF-8"
        ) from error
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            values = tuple(float(field) for field in fields)
        except ValueError:
            values = ()
        if (
            len(values) < 5
            or not values[0].is_integer()
            or not 0 <= values[0] < class_count
        ):
            raise ResourceError(
                f"{where.where(number)}: {line.strip()!r} is not 'class x y w h' with a class "
                f"in 0..{class_count - 1}; fix the label file"
            )
        rows.append(values)
    return rows


def dominant_class(rows: list[tuple[float, ...]]) -> int:
    counts = Counter(int(row[0]) for row in rows)
    return min(counts, key=lambda cls: (-counts[cls], cls)) if counts else 0


def find_data_yaml(folder: Path, origin: Origin, options: ReadOptions) -> Path:
    """The data YAML of a dataset folder: ``data_yaml`` when set, else its one top-level YAML."""
    if options.data_yaml:
        if not options.data_yaml.startswith("/") and escapes_root(options.data_yaml):
            raise ResourceError(
                f"{origin.where()}: data YAML {options.data_yaml!r} points outside the dataset's folder"
            )
        return folder / options.data_yaml
    fix = "name it with plato.sedna.io/data-yaml or data.data_params"
    return single_file(folder, YAML_SUFFIXES, origin.where(), "data YAML", fix)


def read_yolo(
    data_yaml: Path, options: ReadOptions
) -> tuple[YoloLayout, Samples, Samples | None]:
    """The layout and its ``train`` and ``val`` (or ``test``) samples.

    Raises
    ------
    ResourceError
        For an unreadable YAML, one without ``train`` or class names, a ``path``
        outside the YAML's folder, missing images, or malformed label files.
    """
    dataset = options.dataset
    origin = Origin(dataset, str(data_yaml), str(data_yaml.parent))
    config = _load_yaml(data_yaml, origin)
    root = _root(config, data_yaml.parent, origin)
    layout = YoloLayout(data_yaml, root, config, _names(config, origin))
    return _read_layout(layout, options)


def unlisted_root(folder: Path) -> Path | None:
    """Where a folder without a data YAML keeps ``images/`` beside ``labels/``: the folder
    itself or its one sub-folder that does (None: neither)."""
    if _pairs_images_and_labels(folder):
        return folder
    nested = [
        folder / name
        for name in subfolders(folder)
        if _pairs_images_and_labels(folder / name)
    ]
    return nested[0] if len(nested) == 1 else None


def _pairs_images_and_labels(folder: Path) -> bool:
    return (folder / IMAGES_FOLDER).is_dir() and (folder / LABELS_FOLDER).is_dir()


def read_unlisted_yolo(
    folder: Path, options: ReadOptions
) -> tuple[YoloLayout, Samples, Samples | None]:
    """A YOLO dataset with no data YAML (Sedna's coco128 example): ``images/<split>/``
    with ``labels/<split>/``, read as a data YAML naming those folders would be.

    ``train`` is every split folder but ``val*``/``test*`` (all of ``images/`` when it has
    none); ``val`` the first ``val*`` (else ``test*``) folder. The classes are the
    Dataset's (``classes``, ``num_classes``), else ``0..n-1`` for the largest class id
    ``n-1`` in the label files; a warning says which.

    Raises
    ------
    ResourceError
        When neither ``folder`` nor one sub-folder holds ``images/`` beside ``labels/``,
        or the labels name no class and the Dataset gives none.
    """
    root = unlisted_root(folder)
    origin = Origin(options.dataset, str(folder), str(folder))
    if root is None:
        raise ResourceError(
            f"{origin.where()}: no data YAML and no {IMAGES_FOLDER}/ beside {LABELS_FOLDER}/ "
            "(in it or in one sub-folder); give the data YAML"
        )
    config = _unlisted_splits(root)
    names, told = _unlisted_names(root, options, origin)
    config["names"] = dict(enumerate(names))
    val = config.get("val", "none (a held-out part of train is tested)")
    LOGGER.warning(
        "%s: no data YAML found in %s; reading %s as YOLO data (train %s, val %s) with %d "
        "class(es) %s. Give a data YAML (plato.sedna.io/data-yaml) or the classes "
        "(plato.sedna.io/classes, plato.sedna.io/num-classes) to say otherwise",
        options.dataset,
        folder,
        root,
        config["train"],
        val,
        len(names),
        told,
    )
    return _read_layout(YoloLayout(root, root, config, names), options)


def _unlisted_splits(root: Path) -> dict[str, Any]:
    images = root / IMAGES_FOLDER
    names = subfolders(images)
    loose = any(is_image_name(name) for name in os.listdir(images))
    if not names or loose:
        return {"train": IMAGES_FOLDER}
    tests = [name for name in names if name.lower().startswith(_TEST_SPLIT_PREFIXES)]
    trains = [name for name in names if name not in tests]
    config: dict[str, Any] = {}
    if not trains:  # only val/test folders: train on them, test on a held-out part
        trains, tests = tests, []
    paths = [f"{IMAGES_FOLDER}/{name}" for name in trains]
    config["train"] = paths[0] if len(paths) == 1 else paths
    val = sorted(tests, key=lambda name: not name.lower().startswith("val"))
    if val:
        config["val"] = f"{IMAGES_FOLDER}/{val[0]}"
    return config


def _unlisted_names(
    root: Path, options: ReadOptions, origin: Origin
) -> tuple[tuple[str, ...], str]:
    """The class names and where they came from (for the warning)."""
    declared = options.hints.declared()
    if declared is not None:
        how = "named" if options.hints.classes is not None else "counted"
        return declared, f"as the Dataset's settings {how} them"
    largest = _largest_class_id(root / LABELS_FOLDER)
    if largest is None:
        raise ResourceError(
            f"{origin.where()}: no data YAML, and the label files under {root / LABELS_FOLDER} "
            "name no class; give the number of classes (plato.sedna.io/num-classes) or a data YAML"
        )
    return (
        tuple(str(i) for i in range(largest + 1)),
        f"from the labels (largest class id {largest} + 1; a class no label uses is not counted)",
    )


def _largest_class_id(labels: Path) -> int | None:
    """The largest class id of any row in the ``.txt`` files under ``labels`` (rows that are
    not ``class x y w h`` are left for :func:`read_label_rows` to report)."""
    largest = None
    for folder, subfolders_, files in os.walk(labels):
        subfolders_.sort()
        for name in files:
            if not name.endswith(".txt"):
                continue
            try:
                text = (Path(folder) / name).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            for line in text.splitlines():
                first = line.split(maxsplit=1)[:1]
                if first and first[0].isdigit():
                    value = int(first[0])
                    largest = value if largest is None else max(largest, value)
    return largest


def _read_layout(
    layout: YoloLayout, options: ReadOptions
) -> tuple[YoloLayout, Samples, Samples | None]:
    config = layout.config
    split_origin = Origin(options.dataset, str(layout.data_yaml), str(layout.root))
    train = _split(config, "train", layout, split_origin, options)
    test_key = "val" if config.get("val") else "test"
    test = (
        _split(config, test_key, layout, split_origin, options)
        if config.get(test_key)
        else None
    )
    return layout, train, test


def _load_yaml(data_yaml: Path, origin: Origin) -> dict:
    try:
        config = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ResourceError(
            f"{origin.where()} cannot be read as YAML: {error}"
        ) from error
    if not isinstance(config, dict) or not config.get("train"):
        raise ResourceError(
            f"{origin.where()} is not an ultralytics data YAML: it needs 'train' (and 'val'), "
            "and 'names'"
        )
    return config


def _root(config: dict, folder: Path, origin: Origin) -> Path:
    path = str(config.get("path") or "")
    if not path:
        return folder
    if not path.startswith("/") and escapes_root(path):
        raise ResourceError(
            f"{origin.where()}: path {path!r} points outside the YAML's folder; drop 'path' "
            "(the YAML's folder is used) or make it absolute"
        )
    root = folder / path
    if not root.is_dir():
        raise ResourceError(f"{origin.where()}: path {path!r} is not a folder ({root})")
    return root


def _names(config: dict, origin: Origin) -> tuple[str, ...]:
    names = config.get("names")
    if isinstance(names, dict):
        try:
            return tuple(str(names[i]) for i in range(len(names)))
        except KeyError:
            raise ResourceError(
                f"{origin.where()}: names must be numbered 0..{len(names) - 1}"
            ) from None
    if isinstance(names, list) and names:
        return tuple(str(name) for name in names)
    count = config.get("nc")
    if isinstance(count, int) and count > 0:
        return tuple(str(i) for i in range(count))
    raise ResourceError(
        f"{origin.where()}: give the class names ('names') or their number ('nc')"
    )


def _split(
    config: dict, key: str, layout: YoloLayout, origin: Origin, options: ReadOptions
) -> Samples:
    specs: Any = config[key]
    entries: list[str] = []
    for spec in specs if isinstance(specs, list) else [specs]:
        entries += _images(str(spec), layout.root, origin, options)
    if not entries:
        raise ResourceError(
            f"{origin.where()}: {key} ({specs}) holds no images; the dataset is empty"
        )
    targets = array(
        "l",
        (
            dominant_class(
                read_label_rows(
                    label_path(layout.root / e), len(layout.names), origin.dataset
                )
            )
            for e in entries
        ),
    )
    return Samples(
        entries, targets, layout.names, array("l", [0]) * len(entries), origin
    )


def _images(spec: str, root: Path, origin: Origin, options: ReadOptions) -> list[str]:
    """Image entries (relative to ``root``, or absolute) of one train/val item: a folder or a list."""
    if not spec.startswith("/") and escapes_root(spec):
        raise ResourceError(
            f"{origin.where()}: {spec!r} points outside the dataset's folder {root}"
        )
    location = root / spec
    if location.is_dir():
        found = []
        for folder, subfolders, files in os.walk(location):
            subfolders.sort()
            found += [
                os.path.relpath(os.path.join(folder, name), root)
                for name in sorted(files)
                if is_image_name(name)
            ]
        return found
    if location.is_file():
        list_origin = Origin(origin.dataset, str(location), str(location.parent))
        unlabelled = ReadOptions(origin.dataset, skip_missing=options.skip_missing)
        listed = read_txt_index(location, list_origin, unlabelled)
        return [str(location.parent / entry) for entry in listed.entries]
    raise ResourceError(f"{origin.where()}: {spec!r} does not exist under {root}")
