"""How many classes the job's data has, for a model whose class count nothing states.

``sednaModelResource`` takes ``num_classes`` from the config, the Model, or a Dataset's
``plato.sedna.io/num-classes`` annotation. When none gives it, the count is read off
the data (``sednaDataResource``): the classes its index, folders or YOLO YAML name.

The aggregator and every trainer must build the same head, so each counts the same
data: every Dataset of the job (the largest count wins: a trainer's share of a non-IID
split may lack the last classes). A worker that cannot read one of them (in a cluster
a Dataset's hostPath is on another node) knows no count, and neither can the
aggregator, so the architecture's default stays, as before. Plain Plato (no Sedna
role) counts the config's own dataset, which the server and the clients share.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from plato_sedna import resources, runtime_config
from plato_sedna.errors import PlatoSednaError

LOGGER = logging.getLogger(__name__)
DATASOURCE = "sednaDataResource"


@dataclass(frozen=True)
class ClassCount:
    """A class count and where it was read (for the log line and messages)."""

    count: int
    source: str


def data_class_count() -> ClassCount | None:
    """The job's class count as its data shows it, or None when it cannot be known here."""
    if runtime_config.setting("data", "datasource") != DATASOURCE:
        return None
    role = runtime_config.sedna("role")
    try:
        if role in ("aggregator", "trainer"):
            return _job_count(role)
        return _count_of(_worker_settings())
    except (PlatoSednaError, OSError, ValueError) as error:
        LOGGER.info("The data's class count is unknown here (%s)", error)
        return None


def _job_count(role: str) -> ClassCount | None:
    datasets = resources.job_datasets()
    if not datasets:
        return None
    own = resources.pod_dataset() if role == "trainer" else None
    counts = [
        _count_of(_worker_settings() if own is not None and dataset.name == own.name else _settings_of(dataset))
        for dataset in datasets
    ]
    largest = max(counts, key=lambda found: found.count)
    if len({found.count for found in counts}) > 1:
        LOGGER.info(
            "The job's Datasets have %s classes; the model takes the largest, %d",
            ", ".join(str(found.count) for found in counts),
            largest.count,
        )
    return largest


def _worker_settings():
    from plato_sedna.datasources.sedna_resource import current_settings

    return current_settings()


def _settings_of(dataset):
    """The settings another worker would read ``dataset`` with (its url, not this pod's env)."""
    from plato_sedna.datasources.settings import CONFIG_KEYS, resolve_settings

    config = {key: runtime_config.setting("data", key) for key in CONFIG_KEYS}
    manifests = runtime_config.sedna("manifests")
    folder = None
    if manifests:
        path = Path(manifests).resolve()
        folder = str(path if path.is_dir() else path.parent)
    return resolve_settings(config, {}, dataset, folder)


def _count_of(settings) -> ClassCount:
    from plato_sedna.datasources.reader import read_dataset
    from plato_sedna.worker_storage import worker_storage

    if not (settings.train_url or settings.test_url or settings.download_url):
        raise ValueError(f"the {settings.dataset} has no url")
    parts = read_dataset(settings, worker_storage(), runtime_config.sedna("data_path_prefix"))
    samples = parts.train if parts.train is not None else parts.test
    return ClassCount(len(samples.classes), f"the classes of the {settings.dataset}")
