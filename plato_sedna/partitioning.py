"""Whether a trainer takes a partition of a Dataset it shares with other trainers, and which.

Sedna gives each training worker a Dataset. When several workers of one job name the
same Dataset (a public dataset made non-IID across a cluster), each trainer is one of
Plato's simulated clients: its stable client id is the ``-i N`` of its container args
(Sedna injects no index), it is known to the aggregator as ``<dataset>#<N>``, it must be
client #N there, and ``data.sampler`` gives it the partition that plain ``plato -c`` with
the same config and data gives client N. A trainer whose Dataset is its own trains on
all of it (``config._apply_trainer`` makes the sampler ``all_inclusive``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from plato_sedna.errors import ConfigError

if TYPE_CHECKING:
    from plato_sedna.context import SednaContext
    from plato_sedna.resources import JobFacts

LOGGER = logging.getLogger(__name__)

WHOLE_SET_SAMPLER = "all_inclusive"
PARTITION_MARK = "#"
# Sampler -> the data.* keys it reads without a default (Plato fails deep inside otherwise).
SAMPLER_KEYS: Mapping[str, tuple[str, ...]] = {
    "iid": ("partition_size",),
    "noniid": ("partition_size",),
    "orthogonal": ("partition_size",),
    "label_quantity_noniid": ("per_client_classes_size",),
    "mixed_label_quantity_noniid": ("per_client_classes_size", "anchor_classes", "consistent_clients"),
    "sample_quantity_noniid": ("min_partition_size",),
    "distribution_noniid": ("min_partition_size",),
    "mixed": ("non_iid_clients",),
}
# Samplers whose partitions depend on clients.total_clients.
_COUNTING_SAMPLERS = (
    "iid",
    "orthogonal",
    "label_quantity_noniid",
    "mixed_label_quantity_noniid",
    "sample_quantity_noniid",
    "distribution_noniid",
)


def partition_identity(dataset: str, client_id: int) -> str:
    """The identity of trainer ``client_id`` on shared Dataset ``dataset``: ``dataset#N``."""
    return f"{dataset}{PARTITION_MARK}{client_id}"


def claimed_id(identity: str) -> int | None:
    """The client id an identity ``dataset#N`` must have (N); None for any other identity."""
    name, mark, number = identity.rpartition(PARTITION_MARK)
    return int(number) if mark and name and number.isdigit() and int(number) > 0 else None


def client_id_arg(argv: list[str]) -> int | None:
    """The ``-i N`` (``--id N``, ``--id=N``) of a container's command and args; None when absent."""
    for position, arg in enumerate(argv):
        value = arg.partition("=")[2] if arg.startswith("--id=") else None
        if arg in ("-i", "--id") and position + 1 < len(argv):
            value = argv[position + 1]
        if value is not None:
            return int(value) if value.isdigit() else None
    return None


def takes_partition(sampler: str | None) -> bool:
    """Whether ``data.sampler`` gives each client id its own part of the data."""
    return sampler is not None and sampler != WHOLE_SET_SAMPLER


def _shared_by(context: SednaContext, job: JobFacts | None) -> int | None:
    """How many training workers of the job name this pod's Dataset; None when unknown."""
    if job is None or not job.dataset_names or not context.dataset_name:
        return None
    return job.dataset_names.count(context.dataset_name)


def _job_name(context: SednaContext, job: JobFacts | None) -> str:
    return job.ref if job is not None else f"FederatedLearningJob {context.namespace}/{context.job_name}"


def _check_client_id(context: SednaContext, client_id: int | None, job: JobFacts | None, trainers: int | None) -> int:
    dataset = context.dataset_name
    if client_id is None:
        raise ConfigError(
            f"{trainers} training workers of {_job_name(context, job)} share Dataset {dataset}, so each "
            "trainer needs a stable client id that picks its partition; add "
            'args: ["-i", "N"] (N = 1, 2, ..., one per worker) to the container of each '
            "trainingWorkers template on that Dataset"
        )
    count = context.participants_count or (job.participants_count if job is not None else None)
    if count is not None and not 1 <= client_id <= count:
        raise ConfigError(
            f"-i {client_id} of the trainer on Dataset {dataset} is out of range: "
            f"{_job_name(context, job)} has {count} training workers; give each one its own -i from 1 to {count}"
        )
    same = [
        index
        for index, (name, other_id) in enumerate(zip(job.dataset_names, job.client_ids) if job is not None else ())
        if name == dataset and other_id == client_id
    ]
    if len(same) > 1:
        raise ConfigError(
            f"trainingWorkers[{same[0]}] and [{same[1]}] of {_job_name(context, job)} share Dataset {dataset} "
            f"and both have -i {client_id}; give each trainer on that Dataset its own -i N"
        )
    return client_id


def _check_sampler_keys(data: Mapping[str, Any], clients: Mapping[str, Any], context: SednaContext) -> None:
    sampler = data.get("sampler")
    if data.get("random_seed") is None:
        raise ConfigError(
            f"data.sampler = {sampler!r} partitions the shared Dataset {context.dataset_name}, but "
            "data.random_seed is not set: Plato's samplers would seed with each process's id, so the "
            "trainers' partitions would overlap and match no simulation; set data.random_seed (e.g. 1)"
        )
    missing = [key for key in SAMPLER_KEYS.get(str(sampler), ()) if data.get(key) is None]
    if missing:
        keys = ", ".join(f"data.{key}" for key in missing)
        raise ConfigError(f"data.sampler = {sampler!r} needs {keys}; set it in the config's [data] table")
    total = clients.get("total_clients")
    if sampler in _COUNTING_SAMPLERS and context.participants_count and total != context.participants_count:
        LOGGER.warning(
            "clients.total_clients is %s in the config but the job has %d trainers: the partitions follow "
            "the job, so `plato -c` of this config simulates other ones; set clients.total_clients = %d",
            total,
            context.participants_count,
            context.participants_count,
        )


def place_trainer(
    context: SednaContext, config: Mapping[str, Any], client_id: int | None, job: JobFacts | None
) -> SednaContext:
    """``context`` with ``shared_dataset_id`` set when this trainer shares its Dataset.

    Parameters
    ----------
    context : SednaContext
        The trainer's context (other roles are returned unchanged).
    config : Mapping
        The loaded Plato config: ``data.sampler`` and the keys it needs.
    client_id : int | None
        The ``-i N`` of the container args.
    job : JobFacts | None
        The job's training workers' Dataset names; when unknown (no manifests, no API),
        a trainer with ``-i N`` and a partitioning sampler is taken to share its Dataset.

    Raises
    ------
    ConfigError
        When a trainer on a shared Dataset has no ``-i``, an ``-i`` out of range, or a
        partitioning sampler without ``data.random_seed`` or the keys it needs.
    """
    if context.role != "trainer":
        return context
    data = config.get("data") if isinstance(config.get("data"), Mapping) else {}
    clients = config.get("clients") if isinstance(config.get("clients"), Mapping) else {}
    sampler = data.get("sampler")
    trainers = _shared_by(context, job)
    if trainers is None:
        if client_id is None or not takes_partition(sampler) or not context.dataset_name:
            return context
        LOGGER.warning(
            "The job's training workers cannot be read (grant get on federatedlearningjobs.sedna.io); "
            "with -i %d and data.sampler = %s this trainer takes partition %d of Dataset %s as if "
            "other trainers shared it",
            client_id,
            sampler,
            client_id,
            context.dataset_name,
        )
    elif trainers < 2:
        return context
    shared_id = _check_client_id(context, client_id, job, trainers)
    if takes_partition(sampler):
        _check_sampler_keys(data, clients, context)
    else:
        LOGGER.warning(
            "Trainers share Dataset %s but data.sampler = %r partitions nothing: each trains on all of it; "
            "set data.sampler (e.g. noniid) to give each its own part",
            context.dataset_name,
            sampler,
        )
    return dataclasses.replace(context, shared_dataset_id=shared_id)


def label_histogram(datasource, client_id: int) -> tuple[int, dict[int, int]]:
    """(samples, {label: count}) of the partition ``data.sampler`` gives ``client_id``.

    Raises
    ------
    ConfigError
        When the sampler cannot take that partition (a missing key, too few samples).
    """
    from plato.config import Config
    from plato.samplers import registry

    sampler_name = Config().data.sampler
    try:
        indices = list(iter(registry.get(datasource, client_id).get()))
    except (AttributeError, ValueError, RuntimeError) as error:
        raise ConfigError(
            f"data.sampler = {sampler_name!r} cannot take partition {client_id} of "
            f"{datasource.num_train_examples()} training samples ({type(error).__name__}: {error}); "
            "check data.partition_size and the sampler's other data.* keys"
        ) from None
    targets = datasource.targets()
    counts = Counter(int(targets[index]) for index in indices)
    return len(indices), dict(sorted(counts.items()))


def log_partition(datasource, client_id: int, dataset: str | None) -> None:
    """Say which partition this trainer trains on: once, when its data loads."""
    from plato.config import Config

    samples, histogram = label_histogram(datasource, client_id)
    LOGGER.info(
        "Client #%d trains on a %s partition of %s: %d samples, label histogram %s",
        client_id,
        Config().data.sampler,
        dataset,
        samples,
        histogram,
    )
