"""``data.datasource = "sednaDataResource"``: a Sedna Dataset as Plato train/test sets.

Where the data is and how to read it: ``settings.py`` (config ``data.*`` keys, the
pod's env, the Dataset resource, its ``plato.sedna.io/*`` annotations). Formats:
``formats/``. Without test data, a seeded, stratified ``data.test_split`` fraction
(default 0.2) of the train data is held out, except in a Sedna trainer that nobody
asks to test and whose Dataset is its own: it keeps its whole set. Trainers sharing a
Dataset hold out the same part as a simulation does, then take their partition of the rest.
"""

from __future__ import annotations

import logging
from pathlib import Path

from plato.datasources import base

from plato_sedna import resources, runtime_config
from plato_sedna.datasources.datasets import ImageDataset, TextDataset, YoloDataset
from plato_sedna.datasources.reader import DatasetParts, read_dataset
from plato_sedna.datasources.samples import Samples
from plato_sedna.datasources.settings import CONFIG_KEYS, DataSettings, resolve_settings
from plato_sedna.datasources.split import split_held_out
from plato_sedna.errors import ResourceError

LOGGER = logging.getLogger(__name__)


def current_settings() -> DataSettings:
    """The running worker's dataset settings: its config, [sedna] table and Dataset resource."""
    config = {key: runtime_config.setting("data", key) for key in CONFIG_KEYS}
    pod = {key: runtime_config.sedna(key) for key in ("train_url", "test_url")}
    manifests = runtime_config.sedna("manifests")
    manifests_dir = None
    if manifests:
        path = Path(manifests).resolve()
        manifests_dir = str(path if path.is_dir() else path.parent)
    return resolve_settings(config, pod, resources.pod_dataset(), manifests_dir)


def train_and_test(
    parts: DatasetParts, settings: DataSettings
) -> tuple[Samples, Samples]:
    """The parts as ``(train, test)``: an absent test part is held out of the train part."""
    if parts.train is None:
        return parts.test.emptied(), parts.test
    if parts.test is not None:
        return parts.train, parts.test
    tests_here = runtime_config.setting("clients", "do_test", False)
    # A partition of a shared Dataset is taken from the same train part as in simulation.
    shared = runtime_config.sedna("shared_dataset_id") is not None
    if runtime_config.sedna("role") == "trainer" and not tests_here and not shared:
        return (
            parts.train,
            parts.train.emptied(),
        )  # nobody tests here: keep every sample
    return split_held_out(parts.train, settings.test_split, settings.random_seed)


def _dataset(kind: str, samples: Samples, settings: DataSettings):
    prefix = runtime_config.sedna("data_path_prefix")
    if kind == "text":
        return TextDataset(samples)
    if kind == "yolo":
        return YoloDataset(samples, settings.image_size, prefix)
    return ImageDataset(samples, settings.image_size, prefix)


class DataSource(base.DataSource):
    """The pod's Sedna Dataset as Plato datasets; ``layout`` is the YOLO layout, if any."""

    def __init__(self, **kwargs) -> None:
        super().__init__()
        settings = current_settings()
        if (
            not settings.train_url
            and not settings.test_url
            and not settings.download_url
        ):
            raise ResourceError(
                "data.datasource = sednaDataResource found no dataset: the pod has no "
                "TRAIN_DATASET_URL or TEST_DATASET_URL and the config sets neither "
                "data.train_url nor data.test_url"
            )
        from plato_sedna.worker_storage import worker_storage

        parts = read_dataset(
            settings, worker_storage(), runtime_config.sedna("data_path_prefix")
        )
        train, test = train_and_test(parts, settings)
        self.settings = settings
        self.layout = parts.layout
        self.trainset = _dataset(parts.kind, train, settings)
        self.testset = _dataset(parts.kind, test, settings)
        LOGGER.info(
            "sednaDataResource: %d training and %d test samples, %d classes (%s)",
            len(train),
            len(test),
            len(train.classes),
            settings.dataset,
        )

    def classes(self):
        return self.trainset.classes

    def targets(self):
        return self.trainset.targets

    def input_shape(self):
        """The shape of every image, known when ``image_size`` resizes them (read off the first)."""
        if (
            self.settings.image_size
            and isinstance(self.trainset, ImageDataset)
            and len(self.trainset)
        ):
            return tuple(self.trainset.image(0).shape)
        raise NotImplementedError(
            "sednaDataResource images have no fixed input shape; set data.image_size"
        )
