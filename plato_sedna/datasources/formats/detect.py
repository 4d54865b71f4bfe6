"""Which format a dataset is in: the one its settings name, else what its file or folder looks like."""

from __future__ import annotations

import csv
from pathlib import Path

from plato_sedna.datasources.formats import FORMAT_NAMES, SUFFIX_FORMATS
from plato_sedna.datasources.formats.columns import (
    PATH_COLUMNS,
    TEXT_COLUMNS,
    find_column,
)
from plato_sedna.datasources.formats.folders import has_class_folders
from plato_sedna.datasources.formats.single_file import single_file
from plato_sedna.datasources.formats.yolo import YAML_SUFFIXES, unlisted_root
from plato_sedna.datasources.options import ReadOptions
from plato_sedna.errors import ResourceError

INDEX_SUFFIXES = {"txt": ".txt", "csv": ".csv", "jsonl": ".jsonl"}


def format_named(name: str, source: str) -> str:
    """The format a user-written name means ("detect" when it says to look at the files).

    Raises
    ------
    ResourceError
        For a name that is not a known format.
    """
    known = FORMAT_NAMES.get(name.strip().lower())
    if known is None:
        raise ResourceError(
            f"{source} = {name!r} is not a dataset format plato_sedna reads; use one of "
            f"{', '.join(sorted(FORMAT_NAMES))}"
        )
    return known


def detect(path: Path, declared: str, options: ReadOptions) -> tuple[str, Path]:
    """``(format, file or folder to read)`` for a local dataset path.

    A folder given ``txt``/``csv``/``jsonl`` must hold exactly one such file at its top
    level; ``csv`` is told apart from a text table by its header.

    Raises
    ------
    ResourceError
        When the path's format cannot be told, or a folder lacks the declared index.
    """
    if path.is_dir():
        fmt, path = _in_folder(path, declared, options)
    elif declared in ("detect", "folders"):
        fmt = SUFFIX_FORMATS.get(path.suffix.lower())
        if fmt is None or declared == "folders":
            raise ResourceError(
                f"{options.dataset}: cannot tell the format of {path}; name it with "
                "plato.sedna.io/format (or data.format): "
                f"{', '.join(sorted(set(FORMAT_NAMES) - {'detect'}))}"
            )
    else:
        fmt = declared
    if fmt == "csv" and is_text_table(path, options):
        fmt = "table"
    return fmt, path


def _in_folder(folder: Path, declared: str, options: ReadOptions) -> tuple[str, Path]:
    if declared in INDEX_SUFFIXES:
        return declared, _single_index(folder, INDEX_SUFFIXES[declared], options)
    if declared in ("folders", "yolo"):
        return declared, folder
    if options.data_yaml or any(p.suffix in YAML_SUFFIXES for p in folder.iterdir()):
        return "yolo", folder
    if unlisted_root(folder) is not None:  # images/ beside labels/: coco128 as unzipped
        return "yolo", folder
    if has_class_folders(folder):
        return "folders", folder
    indexes = [
        p for p in sorted(folder.iterdir()) if p.suffix in INDEX_SUFFIXES.values()
    ]
    if len(indexes) == 1:
        return SUFFIX_FORMATS[indexes[0].suffix], indexes[0]
    raise ResourceError(
        f"{options.dataset}: cannot tell the format of the folder {folder}: it holds no data "
        "YAML, no images/ beside labels/ (YOLO), no class folders of images, and not exactly one index (.txt, .csv, .jsonl); "
        "name the format with plato.sedna.io/format or point the url at the index"
    )


def _single_index(folder: Path, suffix: str, options: ReadOptions) -> Path:
    fix = "point the Dataset's url at the index file instead"
    return single_file(folder, (suffix,), options.dataset, f"{suffix} index", fix)


def is_text_table(path: Path, options: ReadOptions) -> bool:
    """Whether a csv file is a text table (a text column, no path column) rather than an index."""
    if options.text_column or options.path_column:
        return bool(options.text_column)
    try:
        with path.open(encoding="utf-8", newline="") as file:
            header = next(csv.reader(file), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False  # the index reader reports it, with the line
    if find_column(header, None, PATH_COLUMNS) is not None:
        return False
    return find_column(header, None, TEXT_COLUMNS) is not None
