"""``data.datasource = "sednaDataResource"``: a Sedna Dataset as Plato train/test sets.

Where the index comes from, highest first: the config's ``data.train_url`` /
``data.test_url``, then the ``[sedna]`` table (``TRAIN_DATASET_URL`` /
``TEST_DATASET_URL`` injected by Sedna). Without a test index, a seeded
``data.test_split`` fraction (default 0.2) of the train index is held out.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

from plato.datasources import base

from plato_sedna import runtime_config
from plato_sedna.datasources.index import IndexedSamples, read_txt_index
from plato_sedna.errors import ResourceError

LOGGER = logging.getLogger(__name__)

DEFAULT_TEST_SPLIT = 0.2
DEFAULT_SEED = 1


class IndexedImageDataset:
    """A torch-style dataset over image files; each item is loaded when indexed."""

    def __init__(self, samples: IndexedSamples, image_size: int | None = None) -> None:
        self.paths = list(samples.paths)
        self.targets = list(samples.targets)
        self.classes = list(samples.classes)
        self.image_size = image_size
        self._to_tensor = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        from PIL import Image

        if self._to_tensor is None:
            from torchvision.transforms import functional

            self._to_tensor = functional.to_tensor
        with Image.open(self.paths[index]) as image:
            image.load()
            if self.image_size:
                image = image.resize((self.image_size, self.image_size))
            return self._to_tensor(image), self.targets[index]


def _subset(samples: IndexedSamples, positions: list[int]) -> IndexedSamples:
    return IndexedSamples(
        tuple(samples.paths[i] for i in positions),
        tuple(samples.targets[i] for i in positions),
        samples.classes,
    )


def split_held_out(samples: IndexedSamples, fraction: float, seed: int):
    """Split samples into (train, test) by a seeded shuffle; same split in every process."""
    if not 0 < fraction < 1:
        raise ResourceError(f"data.test_split = {fraction} must be between 0 and 1")
    positions = list(range(len(samples)))
    random.Random(seed).shuffle(positions)
    test_count = max(1, round(len(positions) * fraction))
    return _subset(samples, sorted(positions[test_count:])), _subset(
        samples, sorted(positions[:test_count])
    )


def _dataset_url(kind: str, env_name: str) -> tuple[str | None, str]:
    """The ``train``/``test`` url and where it was set: the config wins over the pod env."""
    from_config = runtime_config.setting("data", f"{kind}_url")
    if from_config:
        return from_config, f"data.{kind}_url"
    return runtime_config.sedna(f"{kind}_url"), env_name


def _index_path(url: str | None, source: str) -> Path | None:
    """The local index file a dataset url names: fetched and cached when remote.

    A folder (an ``s3://`` prefix, an unpacked archive, a local directory) must
    hold exactly one ``.txt`` index at its top level.
    """
    if not url:
        return None
    from plato_sedna.worker_storage import worker_storage

    try:
        path = worker_storage().to_local_path(url)
    except ResourceError as error:
        raise ResourceError(f"the dataset in {source} cannot be read: {error}") from error
    if not path.is_dir():
        return path
    indexes = sorted(path.glob("*.txt"))
    if len(indexes) != 1:
        found = ", ".join(p.name for p in indexes) or "none"
        raise ResourceError(
            f"dataset url {url} is a folder; it needs exactly one .txt index at its top level "
            f"(found: {found}); point the Dataset's url at the index file instead"
        )
    return indexes[0]


def _empty_like(samples: IndexedSamples) -> IndexedSamples:
    return IndexedSamples((), (), samples.classes)


class DataSource(base.DataSource):
    """The pod's Sedna Dataset (a ``txt`` index of images) as Plato datasets."""

    def __init__(self, **kwargs) -> None:
        super().__init__()
        image_size = runtime_config.setting("data", "image_size")
        train_index = _index_path(*_dataset_url("train", "TRAIN_DATASET_URL"))
        test_index = _index_path(*_dataset_url("test", "TEST_DATASET_URL"))
        if train_index is None and test_index is None:
            raise ResourceError(
                "data.datasource = sednaDataResource found no dataset: the pod has no "
                "TRAIN_DATASET_URL or TEST_DATASET_URL and the config sets neither "
                "data.train_url nor data.test_url"
            )
        train, test = self._read(train_index, test_index)
        self.trainset = IndexedImageDataset(train, image_size)
        self.testset = IndexedImageDataset(test, image_size)
        LOGGER.info(
            "sednaDataResource: %d training and %d test samples, %d classes",
            len(train),
            len(test),
            len(train.classes),
        )

    @staticmethod
    def _read(train_index: Path | None, test_index: Path | None):
        if train_index is None:
            test = read_txt_index(test_index)
            return _empty_like(test), test
        train = read_txt_index(train_index)
        if test_index is not None:
            return train, read_txt_index(test_index)
        if runtime_config.sedna("role") == "trainer" and not runtime_config.setting("clients", "do_test", False):
            return train, _empty_like(train)  # nobody tests on this trainer: keep every sample
        fraction = float(runtime_config.setting("data", "test_split", DEFAULT_TEST_SPLIT))
        seed = int(runtime_config.setting("data", "random_seed", DEFAULT_SEED))
        return split_held_out(train, fraction, seed)

    def classes(self):
        return self.trainset.classes

    def targets(self):
        return self.trainset.targets

    @staticmethod
    def input_shape():
        raise NotImplementedError("sednaDataResource images have no fixed input shape")
