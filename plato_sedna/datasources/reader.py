"""A dataset's train and test samples, read from wherever its settings say, in its format."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from plato_sedna.datasources.formats import KINDS
from plato_sedna.datasources.formats.csv_index import read_csv_index
from plato_sedna.datasources.formats.detect import detect, format_named
from plato_sedna.datasources.formats.folders import read_image_folders, split_folders
from plato_sedna.datasources.formats.tables import read_text_table
from plato_sedna.datasources.formats.txt import read_txt_index
from plato_sedna.datasources.formats.yolo import (
    YAML_SUFFIXES,
    YoloLayout,
    find_data_yaml,
    read_unlisted_yolo,
    read_yolo,
    unlisted_root,
)
from plato_sedna.datasources.labels import ClassHints
from plato_sedna.datasources.options import ReadOptions
from plato_sedna.datasources.samples import Origin, Samples
from plato_sedna.datasources.settings import DataSettings
from plato_sedna.errors import ResourceError
from plato_sedna.storage import display_url, is_archive, is_remote

LOGGER = logging.getLogger(__name__)


class LocalPaths(Protocol):
    """What the reader needs of the storage layer."""

    def to_local_path(self, url: str) -> Path: ...


@dataclass(frozen=True)
class DatasetParts:
    """What was read: the kind of samples (``images``, ``yolo``, ``text``) and the parts found.

    ``test`` is None when neither a test url nor a test part of the train data exists.
    """

    kind: str
    train: Samples | None
    test: Samples | None
    layout: YoloLayout | None = None


@dataclass(frozen=True)
class _Located:
    """A dataset url made local: the path, and the root its relative entries resolve against."""

    url: str
    path: Path
    root: str
    file: str
    remote_root: str | None = None


def read_dataset(
    settings: DataSettings, storage: LocalPaths, data_path_prefix: str | None = None
) -> DatasetParts:
    """Read the train url (and the test url) of ``settings``.

    The test data's labels are coded with the train data's classes.

    Raises
    ------
    ResourceError
        For a url that cannot be read, an unknown or undetectable format, and any
        bad input the format readers find.
    """
    declared = "detect"
    if settings.format:
        declared = format_named(
            settings.format, settings.source.get("format", "data.format")
        )
    options = ReadOptions(
        dataset=settings.dataset,
        hints=settings.hints,
        skip_missing=settings.skip_missing,
        data_path_prefix=data_path_prefix,
        path_column=settings.path_column,
        label_column=settings.label_column,
        text_column=settings.text_column,
        data_yaml=settings.data_yaml,
    )
    train = _read_url(settings, "train_url", storage, declared, options)
    if train is not None and train.train is not None and settings.hints == ClassHints():
        options = replace(options, hints=ClassHints(train.train.classes))
    test = _read_url(settings, "test_url", storage, declared, options)
    if train is None and test is None:
        raise ResourceError(f"{settings.dataset}: no train or test url is set")
    if train is not None and test is not None and train.kind != test.kind:
        raise ResourceError(
            f"{settings.dataset}: the train data holds {train.kind} and the test data {test.kind}; "
            "give both in one format"
        )
    if test is None:
        return train
    if train is None:
        return DatasetParts(test.kind, None, test.test or test.train, test.layout)
    return DatasetParts(train.kind, train.train, test.test or test.train, train.layout)


def _read_url(
    settings: DataSettings,
    key: str,
    storage: LocalPaths,
    declared: str,
    options: ReadOptions,
) -> DatasetParts | None:
    url = getattr(settings, key) or (
        settings.download_url if key == "train_url" else None
    )
    if not url:
        return None
    located = _locate(settings, key, url, storage)
    fmt, path = detect(located.path, declared, options)
    if path != located.path:
        located = replace(located, path=path, file=str(path))
    origin = Origin(settings.dataset, located.file, located.root, located.remote_root)
    return _read_format(fmt, located, origin, options)


def _read_format(
    fmt: str, located: _Located, origin: Origin, options: ReadOptions
) -> DatasetParts:
    kind = KINDS[fmt]
    if fmt == "txt":
        return DatasetParts(kind, read_txt_index(located.path, origin, options), None)
    if fmt == "csv":
        return DatasetParts(kind, read_csv_index(located.path, origin, options), None)
    if fmt in ("table", "jsonl"):
        table = read_text_table(
            located.path, origin, options, "jsonl" if fmt == "jsonl" else "csv"
        )
        return DatasetParts(kind, table, None)
    if fmt == "folders":
        return _read_folders(located.path, origin, options)
    if located.path.is_file():
        layout, train, test = read_yolo(located.path, options)
    elif _without_data_yaml(located.path, options):
        layout, train, test = read_unlisted_yolo(located.path, options)
    else:
        data_yaml = find_data_yaml(located.path, origin, options)
        layout, train, test = read_yolo(data_yaml, options)
    return DatasetParts(kind, train, test, layout)


def _without_data_yaml(folder: Path, options: ReadOptions) -> bool:
    """A YOLO folder with no data YAML at its top, but ``images/`` beside ``labels/``."""
    if options.data_yaml or any(p.suffix in YAML_SUFFIXES for p in folder.iterdir()):
        return False
    return unlisted_root(folder) is not None


def _read_folders(root: Path, origin: Origin, options: ReadOptions) -> DatasetParts:
    parts = split_folders(root)
    if parts is None:
        return DatasetParts("images", read_image_folders(root, origin, options), None)
    train_root, test_root = parts
    train = read_image_folders(
        train_root, replace(origin, file=str(train_root), root=str(train_root)), options
    )
    if test_root is None:
        return DatasetParts("images", train, None)
    test_options = replace(options, hints=ClassHints(train.classes))
    test_origin = replace(origin, file=str(test_root), root=str(test_root))
    return DatasetParts(
        "images", train, read_image_folders(test_root, test_origin, test_options)
    )


def _locate(
    settings: DataSettings, key: str, url: str, storage: LocalPaths
) -> _Located:
    """The url as a local path; a missing local train url falls back to ``download_url``."""
    where = settings.source.get(key, key)
    try:
        path = storage.to_local_path(url)
    except ResourceError as error:
        if key != "train_url" or not settings.download_url or is_remote(url):
            raise ResourceError(
                f"{settings.dataset}: the data in {where} cannot be read: {error}"
            ) from error
        LOGGER.info(
            "%s: %s is not here; fetching %s",
            settings.dataset,
            url,
            display_url(settings.download_url),
        )
        return _locate(
            replace(settings, download_url=None), key, settings.download_url, storage
        )
    if path.is_dir():
        return _Located(url, path, str(path), str(path))
    if is_remote(url) and not is_archive(url):
        # an index fetched on its own: its relative entries are fetched from beside it
        return _Located(url, path, _folder_url(url), display_url(url))
    original = settings.train_origin_url if key == "train_url" else None
    if original and not is_archive(original):
        # a local copy of a remote index (Sedna's /downloads/...): what is not beside it is there
        return _Located(url, path, str(path.parent), str(path), _folder_url(original))
    return _Located(url, path, str(path.parent), str(path))


def _folder_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/"
