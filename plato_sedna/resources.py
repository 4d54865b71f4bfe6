"""The Sedna resources a running worker can see: from the manifests, else the Kubernetes API."""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from plato_sedna import runtime_config
from plato_sedna.errors import ConfigError, ResourceError

if TYPE_CHECKING:
    from plato_sedna.context import SednaContext
    from plato_sedna.job_transmitter import TransmitterChoice
    from plato_sedna.kube import JobResource, KubeClient, PodResource
    from plato_sedna.local.manifests import DatasetSpec, JobSpec, ModelSpec

logger = logging.getLogger(__name__)

# Resolution order of every function here: the manifests `plato-sedna run` passes in
# the [sedna] table; else the Kubernetes API when the pod runs in a cluster; else None,
# and callers use the environment Sedna injects. An API that refuses (no RBAC) or does
# not answer costs one warning per process, never a crash.


@dataclass(frozen=True)
class _Pod:
    """Where this worker runs: from its [sedna] table, or its context before Plato starts."""

    job_name: str | None
    namespace: str | None
    dataset_name: str | None
    model_name: str | None
    manifests: str | None

    @classmethod
    def of_context(cls, context: SednaContext) -> _Pod:
        return cls(
            context.job_name, context.namespace, context.dataset_name, context.model_name, context.manifests
        )


def _pod() -> _Pod:
    return _Pod(
        job_name=runtime_config.sedna("job_name"),
        namespace=runtime_config.sedna("namespace"),
        dataset_name=runtime_config.sedna("dataset_name"),
        model_name=runtime_config.sedna("model_name"),
        manifests=runtime_config.sedna("manifests"),
    )


@cache
def _load_manifest_job(manifests: str, job_name: str | None) -> JobSpec:
    from plato_sedna.local.manifests import load_job

    return load_job(Path(manifests), job_name)


def _manifest_job(pod: _Pod) -> JobSpec | None:
    return _load_manifest_job(pod.manifests, pod.job_name) if pod.manifests else None


class _Api:
    """The Kubernetes API as this process sees it: connected once, each read made once."""

    def __init__(self) -> None:
        self._client: KubeClient | None = None
        self._connected = False
        self._down = False
        self._warned = False
        self._answers: dict[Hashable, Any] = {}

    def client(self) -> KubeClient | None:
        """The client, connected on first use; None outside a cluster or once the API is down."""
        if not self._connected:
            self._connected = True
            self._client = self._connect()
        return None if self._down else self._client

    def read[T](self, key: Hashable, reader: Callable[[KubeClient], T]) -> T | None:
        """``reader(client)``, remembered under ``key``; None when the API cannot tell."""
        if key not in self._answers:
            self._answers[key] = self._read(reader)
        return self._answers[key]

    def _read[T](self, reader: Callable[[KubeClient], T]) -> T | None:
        from plato_sedna.kube import ApiUnavailable

        client = self.client()
        if client is None:
            return None
        try:
            return reader(client)
        except ApiUnavailable as error:
            self._down = True  # later reads would wait for the same timeouts
            self._fall_back(error)
        except ResourceError as error:
            self._fall_back(error)
        return None

    def _connect(self) -> KubeClient | None:
        from plato_sedna import kube
        from plato_sedna.context import current_kube_settings

        try:
            settings = current_kube_settings()
        except ConfigError as error:
            self._fall_back(error)
            return None
        return kube.connect(
            settings.serviceaccount_dir,
            settings.service_host,
            settings.service_port,
            settings.kubeconfig,
        )

    def _fall_back(self, error: Exception) -> None:
        if self._warned:
            logger.debug("%s; using the pod's environment", error)
            return
        self._warned = True
        logger.warning("%s; going on with what the pod's environment says", error)


_api = _Api()


def reset() -> None:
    """Forget every resource read and warning given, so the next call reads afresh."""
    global _api
    _load_manifest_job.cache_clear()
    _api = _Api()


def _namespace(pod: _Pod) -> str | None:
    if pod.namespace:
        return pod.namespace
    client = _api.client()
    return client.namespace if client is not None else None


def _api_job(pod: _Pod) -> JobResource | None:
    namespace = _namespace(pod)
    if not pod.job_name or not namespace:
        return None
    job_name = pod.job_name
    return _api.read(
        ("FederatedLearningJob", namespace, job_name),
        lambda client: client.get_job(namespace, job_name),
    )


def aggregation_model() -> ModelSpec | None:
    """The job's aggregation Model resource, or None when no source is available."""
    pod = _pod()
    job = _manifest_job(pod)
    if job is not None:
        return job.model
    if not pod.job_name:
        return None
    namespace = _namespace(pod)
    api_job = None if pod.model_name else _api_job(pod)
    name = pod.model_name or (api_job.model_name if api_job is not None else None)
    if not namespace or not name:
        return None
    return _api.read(("Model", namespace, name), lambda client: client.get_model(namespace, name))


def pod_dataset() -> DatasetSpec | None:
    """This trainer's Dataset resource (``DATASET_NAME``), or None when none is available."""
    pod = _pod()
    if not pod.dataset_name:
        return None
    name = pod.dataset_name
    job = _manifest_job(pod)
    if job is not None:
        datasets = (trainer.dataset for trainer in job.trainers)
        return next((dataset for dataset in datasets if dataset and dataset.name == name), None)
    namespace = _namespace(pod)
    if not pod.job_name or not namespace:
        return None
    return _api.read(
        ("Dataset", namespace, name), lambda client: client.get_dataset(namespace, name)
    )


def job_datasets() -> tuple[DatasetSpec, ...]:
    """The Datasets of the job's training workers (what the aggregator knows of its data)."""
    pod = _pod()
    job = _manifest_job(pod)
    if job is not None:
        return tuple(trainer.dataset for trainer in job.trainers if trainer.dataset is not None)
    api_job = _api_job(pod)
    namespace = _namespace(pod)
    if api_job is None or not namespace:
        return ()
    found = (
        _api.read(("Dataset", namespace, name), lambda client, name=name: client.get_dataset(namespace, name))
        for name in api_job.dataset_names
    )
    return tuple(dataset for dataset in found if dataset is not None)


def participants_from_job() -> int | None:
    """The job's number of training workers, or None when the job cannot be read."""
    facts = _job_facts(_pod())
    return facts.participants_count if facts is not None else None


@dataclass(frozen=True)
class JobFacts:
    """What the FederatedLearningJob itself says that the pod's env may not.

    participants_count : int
        The number of ``trainingWorkers``.
    server_tables : Mapping[str, Mapping]
        ``stop_condition`` / ``aggregation_trigger`` tables from the job's
        ``stopCondition`` / ``aggregationTrigger`` (extended CRD or annotations).
    transmitter, agg_data_path : str, str | None
        ``spec.transmitter``: "s3" with its ``aggDataPath``, or "ws".
    dataset_names : tuple[str, ...]
        Each training worker's Dataset name, in order (a name repeats on a shared Dataset).
    client_ids : tuple[int | None, ...]
        Each training worker's ``-i N`` from its container args; empty when unknown (the
        API serves the templates, but only the manifests are read for them).
    transmitter_choice : TransmitterChoice | None
        The job's ``transimitter.transimitter_list`` (job_transmitter.py), when it has one.
    config_url : str | None
        ``spec.aggregationWorker.platoConfig.url``: the job's Plato config.
    aggregator_env : tuple[tuple[str, str], ...]
        The aggregation worker's template env, for the job-wide hyperparameters.
    """

    ref: str
    participants_count: int
    server_tables: Mapping[str, Mapping[str, Any]]
    transmitter: str = "ws"
    agg_data_path: str | None = None
    dataset_names: tuple[str, ...] = ()
    client_ids: tuple[int | None, ...] = ()
    transmitter_choice: TransmitterChoice | None = None
    config_url: str | None = None
    aggregator_env: tuple[tuple[str, str], ...] = ()


def _job_facts(pod: _Pod) -> JobFacts | None:
    from plato_sedna.job_conditions import server_tables
    from plato_sedna.job_transmitter import transmitter_choice

    job = _manifest_job(pod) or _api_job(pod)
    if job is None:
        return None
    tables = server_tables(job.ref, job.proposal_fields, job.annotations)
    from plato_sedna.partitioning import client_id_arg

    dataset_names = getattr(job, "dataset_names", None)  # an API job; manifests name them per trainer
    client_ids: tuple[int | None, ...] = ()
    aggregator_env = getattr(job, "aggregator_env", None)  # an API job
    if aggregator_env is None:
        aggregator_env = job.aggregator.env
    if dataset_names is None:
        dataset_names = tuple(trainer.dataset.name for trainer in job.trainers if trainer.dataset is not None)
        client_ids = tuple(client_id_arg([*trainer.command, *trainer.args]) for trainer in job.trainers)
    return JobFacts(
        job.ref,
        job.participants_count,
        MappingProxyType(tables),
        job.transmitter,
        job.agg_data_path,
        tuple(dataset_names),
        client_ids,
        transmitter_choice(job.ref, job.proposal_fields, job.annotations),
        job.config_url,
        tuple(aggregator_env),
    )


def job_facts(context: SednaContext) -> JobFacts | None:
    """The pod's FederatedLearningJob facts, read before Plato's config exists.

    From the manifests ``plato-sedna run`` passes, else the Kubernetes API, else None.

    Raises
    ------
    ConfigError
        When the job's stopCondition or aggregationTrigger is malformed.
    """
    return _job_facts(_Pod.of_context(context))


def job_pods() -> tuple[PodResource, ...] | None:
    """The job's pods from the Kubernetes API, or None outside a cluster or when refused."""
    pod = _pod()
    namespace = _namespace(pod)
    if _manifest_job(pod) is not None or not pod.job_name or not namespace:
        return None
    job_name = pod.job_name
    return _api.read(
        ("Pod", namespace, job_name), lambda client: client.list_job_pods(namespace, job_name)
    )
