"""Where a Sedna dataset is and how to read it, gathered from every place that can say so.

Highest first: the Plato config's ``data.*`` keys; the pod's environment (the
``[sedna]`` table: ``TRAIN_DATASET_URL``, ``TEST_DATASET_URL``); the Dataset resource
(``spec.url``); its ``plato.sedna.io/*`` annotations; the seed proposal's extra spec
fields (clusters running the extended CRDs). The one exception: the
``plato.sedna.io/format`` annotation wins over ``spec.format``, which Sedna's
LocalController restricts to ``txt``/``csv`` (see docs/annotations-data.md).
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plato_sedna.datasources.labels import ClassHints
from plato_sedna.errors import ResourceError
from plato_sedna.storage import display_url, is_remote

if TYPE_CHECKING:
    from plato_sedna.local.manifests import DatasetSpec

LOGGER = logging.getLogger(__name__)

ANNOTATION_PREFIX = "plato.sedna.io/"
# Dataset annotation -> setting.
ANNOTATIONS: Mapping[str, str] = {
    f"{ANNOTATION_PREFIX}format": "format",
    f"{ANNOTATION_PREFIX}num-classes": "num_classes",
    f"{ANNOTATION_PREFIX}classes": "classes",
    f"{ANNOTATION_PREFIX}image-size": "image_size",
    f"{ANNOTATION_PREFIX}test-url": "test_url",
    f"{ANNOTATION_PREFIX}data-yaml": "data_yaml",
    f"{ANNOTATION_PREFIX}download-url": "download_url",
    f"{ANNOTATION_PREFIX}path-column": "path_column",
    f"{ANNOTATION_PREFIX}label-column": "label_column",
    f"{ANNOTATION_PREFIX}text-column": "text_column",
}
# The seed proposal's Dataset spec field -> setting.
EXTRA_SPEC_FIELDS: Mapping[str, str] = {
    "num_classes": "num_classes",
    "classes": "classes",
    "image_size": "image_size",
    "data_params": "data_yaml",
    "train_path": "train_url",
    "test_path": "test_url",
    "download_url": "download_url",
}
# Plato config data.* key -> setting.
CONFIG_KEYS: Mapping[str, str] = {
    "train_url": "train_url",
    "test_url": "test_url",
    "format": "format",
    "classes": "classes",
    "num_classes": "num_classes",
    "image_size": "image_size",
    "data_params": "data_yaml",
    "download_url": "download_url",
    "path_column": "path_column",
    "label_column": "label_column",
    "text_column": "text_column",
    "test_split": "test_split",
    "random_seed": "random_seed",
    "skip_missing": "skip_missing",
}
DEFAULT_TEST_SPLIT = 0.2
DEFAULT_SEED = 1
_URL_SETTINGS = ("train_url", "test_url", "download_url")


@dataclass(frozen=True)
class DataSettings:
    """Everything sednaDataResource needs to find and read a dataset; ``source`` says who set what."""

    dataset: str
    train_url: str | None = None
    test_url: str | None = None
    format: str | None = None
    classes: tuple[str, ...] | None = None
    num_classes: int | None = None
    image_size: int | None = None
    data_yaml: str | None = None
    download_url: str | None = None
    path_column: str | None = None
    label_column: str | None = None
    text_column: str | None = None
    test_split: float = DEFAULT_TEST_SPLIT
    random_seed: int = DEFAULT_SEED
    skip_missing: bool = False
    source: Mapping[str, str] = field(default_factory=dict)
    # The Dataset's remote spec.url when train_url is a local copy of it (Sedna's storage
    # initializer downloads an s3/http index alone into /downloads): relative entries
    # missing beside the copy are fetched from beside this url.
    train_origin_url: str | None = None

    @property
    def hints(self) -> ClassHints:
        return ClassHints(self.classes, self.num_classes)


@dataclass(frozen=True)
class _Layer:
    """One place settings come from: its name (for messages) and the values it gives.

    ``keys`` maps the layer's own names (``num-classes``, ``data_params``) to settings.
    """

    name: str
    values: Mapping[str, Any]
    keys: Mapping[str, str] = field(default_factory=dict)

    def where(self, setting: str) -> str:
        own = next((name for name, key in self.keys.items() if key == setting), setting)
        return self.name.format(key=own)


def resolve_settings(
    config: Mapping[str, Any],
    pod: Mapping[str, Any],
    dataset: DatasetSpec | None = None,
    manifests_dir: str | None = None,
) -> DataSettings:
    """Merge the layers, highest first, and check each value.

    Parameters
    ----------
    config : Mapping
        The config's ``data`` table.
    pod : Mapping
        ``train_url`` / ``test_url`` from the pod's ``[sedna]`` table.
    dataset : DatasetSpec | None
        The pod's Dataset resource, when one can be read.
    manifests_dir : str | None
        Where relative urls of the resource resolve (``plato-sedna run``'s manifests folder).

    Raises
    ------
    ResourceError
        For a value of the wrong type, naming where it was set.
    """
    layers = [
        _Layer(
            "config data.{key}",
            {CONFIG_KEYS[k]: v for k, v in config.items() if k in CONFIG_KEYS},
            CONFIG_KEYS,
        ),
        _Layer(
            "env {key}",
            {k: pod.get(k) for k in ("train_url", "test_url")},
            {"TRAIN_DATASET_URL": "train_url", "TEST_DATASET_URL": "test_url"},
        ),
        *_resource_layers(dataset, manifests_dir),
    ]
    chosen: dict[str, Any] = {}
    source: dict[str, str] = {}
    for layer in layers:
        for key, value in layer.values.items():
            if value not in (None, "") and key not in chosen:
                source[key] = layer.where(key)
                chosen[key] = _checked(key, value, source[key])
    name = _dataset_name(dataset, chosen)
    origin_url = _copied_from(dataset, chosen.get("train_url"))
    return DataSettings(
        dataset=name, source=source, train_origin_url=origin_url, **chosen
    )


def _copied_from(dataset: DatasetSpec | None, train_url: str | None) -> str | None:
    """The Dataset's remote url when the local ``train_url`` stands for it (a copy, such as
    the ``/downloads/<bucket>/<key>`` Sedna's storage initializer writes)."""
    if dataset is None or not train_url or is_remote(train_url):
        return None
    return dataset.url if is_remote(dataset.url) else None


def _resource_layers(
    dataset: DatasetSpec | None, manifests_dir: str | None
) -> list[_Layer]:
    if dataset is None:
        return []
    ref = f"Dataset {dataset.namespace}/{dataset.name}"
    url = _beside(manifests_dir, dataset.url)
    annotations = {
        ANNOTATIONS[key]: value
        for key, value in dataset.annotations.items()
        if key in ANNOTATIONS
    }
    _warn_unknown_annotations(dataset, ref)
    extra = {
        EXTRA_SPEC_FIELDS[key]: value
        for key, value in dataset.extra.items()
        if key in EXTRA_SPEC_FIELDS
    }
    for key in ("train_url", "test_url"):
        if isinstance(extra.get(key), str):
            extra[key] = _beside(_folder_of(url), extra[key])
    for key in _URL_SETTINGS:
        if isinstance(annotations.get(key), str):
            annotations[key] = _beside(manifests_dir, annotations[key])
    return [
        _Layer(f"annotation {{key}} of {ref}", annotations, ANNOTATIONS),
        _Layer(f"{ref} spec.url", {"train_url": url}),
        _Layer(f"{ref} spec.format", {"format": dataset.format}),
        _Layer(f"{ref} spec.{{key}}", extra, EXTRA_SPEC_FIELDS),
    ]


def _warn_unknown_annotations(dataset: DatasetSpec, ref: str) -> None:
    unknown = [
        key
        for key in dataset.annotations
        if key.startswith(ANNOTATION_PREFIX) and key not in ANNOTATIONS
    ]
    if unknown:
        LOGGER.warning(
            "%s: ignoring annotation(s) %s; sednaDataResource reads %s (see docs/annotations-data.md)",
            ref,
            ", ".join(sorted(unknown)),
            ", ".join(ANNOTATIONS),
        )


def _beside(folder: str | None, url: str) -> str:
    """``url``, or a relative path resolved against ``folder``."""
    if not folder or is_remote(url) or url.startswith("/"):
        return url
    return posixpath.join(folder, url)


def _folder_of(url: str) -> str:
    """A dataset url as a folder: itself when it names one, else the folder of the file it names."""
    if url.endswith("/") or not posixpath.splitext(url)[1]:
        return url
    return posixpath.dirname(url)


def _dataset_name(dataset: DatasetSpec | None, chosen: Mapping[str, Any]) -> str:
    if dataset is not None:
        return f"Dataset {dataset.namespace}/{dataset.name}"
    url = chosen.get("train_url") or chosen.get("test_url")
    return f"dataset {display_url(url)}" if url else "dataset"


def _checked(key: str, value: Any, where: str) -> Any:
    if key in ("num_classes", "image_size", "random_seed"):
        return _integer(value, where, minimum=0 if key == "random_seed" else 1)
    if key == "test_split":
        return _fraction(value, where)
    if key == "skip_missing":
        return _boolean(value, where)
    if key == "classes":
        return _class_names(value, where)
    if not isinstance(value, str):
        raise ResourceError(f"{where} = {value!r} must be a string")
    return value.strip()


def _integer(value: Any, where: str, minimum: int) -> int:
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise ResourceError(f"{where} = {value!r} must be an integer >= {minimum}")
    return number


def _fraction(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not 0 < number < 1:
        raise ResourceError(f"{where} = {value!r} must be a number between 0 and 1")
    return number


def _boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ResourceError(f"{where} = {value!r} must be true or false")


def _class_names(value: Any, where: str) -> tuple[str, ...]:
    """A list, a JSON list in a string, or comma-separated names."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise ResourceError(
                    f"{where} = {value!r} is not a JSON list: {error.msg}"
                ) from error
        else:
            value = [name.strip() for name in text.split(",")]
    if (
        not isinstance(value, (list, tuple))
        or not value
        or not all(str(n).strip() for n in value)
    ):
        raise ResourceError(
            f"{where} = {value!r} must be a non-empty list of class names"
        )
    names = tuple(str(name).strip() for name in value)
    if len(set(names)) != len(names):
        raise ResourceError(f"{where} = {value!r} names a class twice")
    return names
