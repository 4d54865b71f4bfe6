"""Kubernetes API access: Sedna resources and a job's pods, read in-cluster or via a kubeconfig."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from plato_sedna.context import DEFAULT_SERVICEACCOUNT_DIR
from plato_sedna.errors import ResourceError
from plato_sedna.job_conditions import PROPOSAL_FIELDS
from plato_sedna.local.manifests import (
    DatasetSpec,
    ModelSpec,
    dataset_from_object,
    model_from_object,
)

logger = logging.getLogger(__name__)

GROUP = "sedna.io"
VERSION = "v1alpha1"
JOB_LABEL = "federatedlearningjob.sedna.io/name"
WORKER_TYPE_LABEL = "federatedlearningjob.sedna.io/worker-type"
DEFAULT_TIMEOUT_S = 5.0
# Seconds to wait before each new try of a read that could not connect or got 429/5xx.
READ_BACKOFFS_S: tuple[float, ...] = (0.5, 1.0)
# Only this much of an apiserver Status message reaches a log or an error.
STATUS_TEXT_MAX = 256

# Kind -> (plural, API group) of every resource read here.
_RESOURCES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "Dataset": ("datasets", GROUP),
        "Model": ("models", GROUP),
        "FederatedLearningJob": ("federatedlearningjobs", GROUP),
        "Pod": ("pods", ""),
    }
)


class KubeError(ResourceError):
    """A read from the Kubernetes API failed; the message names the resource and the fix."""


class AccessDenied(KubeError):
    """The API refused the credentials (401) or the read (403: an RBAC rule is missing)."""


class ResourceNotFound(KubeError):
    """The resource does not exist (404)."""


class ApiUnavailable(KubeError):
    """The API did not answer: no connection, a timeout, a TLS failure, 429 or 5xx."""


@dataclass(frozen=True)
class JobResource:
    """A FederatedLearningJob as the API serves it: the names its workers resolve."""

    name: str
    namespace: str
    model_name: str
    dataset_names: tuple[str, ...]
    pretrained_model_name: str | None = None
    transmitter: str = "ws"
    agg_data_path: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    # spec.stopCondition / spec.aggregationTrigger, served by the extended CRD only
    proposal_fields: Mapping[str, Any] = field(default_factory=dict)
    # spec.aggregationWorker.platoConfig.url, served by the extended CRD only
    config_url: str | None = None
    # the aggregation worker's container env (name, value), values given as text only
    aggregator_env: tuple[tuple[str, str], ...] = ()

    @property
    def ref(self) -> str:
        """The job as ``FederatedLearningJob namespace/name``."""
        return f"FederatedLearningJob {self.namespace}/{self.name}"

    @property
    def participants_count(self) -> int:
        """The number of training workers (what Sedna injects as ``PARTICIPANTS_COUNT``)."""
        return len(self.dataset_names)


@dataclass(frozen=True)
class PodResource:
    """One pod of a job, as far as the plugin cares."""

    name: str
    namespace: str
    worker_type: str | None
    phase: str | None
    node_name: str | None
    pod_ip: str | None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Target:
    """What a request reads, for messages: kind, namespace, name and the verb RBAC checks."""

    kind: str
    namespace: str
    name: str
    verb: str = "get"

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


class KubeClient:
    """Reads of Sedna resources and pods through one authenticated API client.

    Parameters
    ----------
    api_client : kubernetes.client.ApiClient
        A configured client; build it with :func:`connect`.
    namespace : str | None (default: None)
        The namespace of the credentials (the service account's, or the kubeconfig context's).
    timeout_s : float (default: 5.0)
        The limit of every request, connection and answer together.
    backoffs_s : tuple[float, ...] (default: (0.5, 1.0))
        Waits before the retries of a read that could not connect or got 429/5xx.
    """

    def __init__(
        self,
        api_client: Any,
        *,
        namespace: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        backoffs_s: tuple[float, ...] = READ_BACKOFFS_S,
    ) -> None:
        self._api_client = api_client
        self.namespace = namespace
        self.timeout_s = timeout_s
        self.backoffs_s = tuple(backoffs_s)

    @property
    def host(self) -> str:
        """The API server's URL."""
        return str(self._api_client.configuration.host)

    def close(self) -> None:
        """Release the client's connections."""
        self._api_client.close()

    def get_job(self, namespace: str, name: str) -> JobResource:
        """The FederatedLearningJob ``namespace/name``.

        Raises
        ------
        KubeError
            AccessDenied, ResourceNotFound or ApiUnavailable, naming the job and the fix.
        """
        target = _Target("FederatedLearningJob", namespace, name)
        return _job_record(self._get_custom(target), self._source(target))

    def get_dataset(self, namespace: str, name: str) -> DatasetSpec:
        """The Dataset ``namespace/name``, annotations included.

        Raises
        ------
        KubeError
            AccessDenied, ResourceNotFound or ApiUnavailable, naming the Dataset and the fix.
        """
        target = _Target("Dataset", namespace, name)
        return dataset_from_object(self._get_custom(target), self._source(target))

    def get_model(self, namespace: str, name: str) -> ModelSpec:
        """The Model ``namespace/name``, annotations included.

        Raises
        ------
        KubeError
            AccessDenied, ResourceNotFound or ApiUnavailable, naming the Model and the fix.
        """
        target = _Target("Model", namespace, name)
        return model_from_object(self._get_custom(target), self._source(target))

    def list_job_pods(self, namespace: str, job_name: str) -> tuple[PodResource, ...]:
        """The pods Sedna created for the job ``namespace/job_name`` (by its name label).

        Raises
        ------
        KubeError
            AccessDenied, ResourceNotFound or ApiUnavailable, naming the pods and the fix.
        """
        from kubernetes import client

        api = client.CoreV1Api(self._api_client)
        target = _Target("Pod", namespace, f"* with label {JOB_LABEL}={job_name}", verb="list")
        answer = self._call(
            lambda: api.list_namespaced_pod(
                namespace,
                label_selector=f"{JOB_LABEL}={job_name}",
                _request_timeout=self.timeout_s,
            ),
            target,
        )
        return tuple(_pod_record(pod) for pod in answer.items or ())

    def _source(self, target: _Target) -> str:
        return f"the Kubernetes API at {self.host} ({target.ref})"

    def _get_custom(self, target: _Target) -> Mapping[str, Any]:
        from kubernetes import client

        api = client.CustomObjectsApi(self._api_client)
        plural, group = _RESOURCES[target.kind]
        return self._call(
            lambda: api.get_namespaced_custom_object(
                group,
                VERSION,
                target.namespace,
                plural,
                target.name,
                _request_timeout=self.timeout_s,
            ),
            target,
        )

    def _call[T](self, read: Callable[[], T], target: _Target) -> T:
        """``read()``, retried per ``backoffs_s`` while the API is briefly unavailable."""
        for attempt, wait in enumerate((*self.backoffs_s, None), start=1):
            try:
                return read()
            except Exception as error:
                failure = _failure(error, target, self.host)
                if failure is None:
                    raise
                if wait is None or not _retryable(error):
                    raise failure from error
                logger.info(
                    "Reading %s failed (attempt %d); retrying in %.1f s: %s",
                    target.ref,
                    attempt,
                    wait,
                    failure,
                )
                time.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")


def connect(
    service_account_dir: Path = DEFAULT_SERVICEACCOUNT_DIR,
    host: str | None = None,
    port: int | str | None = None,
    kubeconfig: str | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> KubeClient | None:
    """A client for the cluster this process runs in, or None when there is none.

    Parameters
    ----------
    service_account_dir : Path (default: /var/run/secrets/kubernetes.io/serviceaccount)
        The folder with ``token``, ``ca.crt`` and ``namespace``, tried first.
    host, port : str | None, int | str | None (default: None)
        ``KUBERNETES_SERVICE_HOST`` and ``KUBERNETES_SERVICE_PORT``; in-cluster needs both.
    kubeconfig : str | None (default: None)
        A kubeconfig path (or several joined by ``os.pathsep``), tried second; None skips it.
    timeout_s : float (default: 5.0)
        The limit of every request the client makes.

    Returns
    -------
    KubeClient | None
        The client; None when neither in-cluster credentials nor a usable kubeconfig exist.
    """
    client = _in_cluster(Path(service_account_dir), host, port, timeout_s)
    if client is None and kubeconfig:
        client = _from_kubeconfig(kubeconfig, timeout_s)
    if client is None:
        logger.debug("No Kubernetes API: not in a cluster and no usable kubeconfig")
    return client


def _in_cluster(
    directory: Path, host: str | None, port: int | str | None, timeout_s: float
) -> KubeClient | None:
    token, ca = directory / "token", directory / "ca.crt"
    if not host or not port:
        logger.debug("Not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set")
        return None
    if not token.is_file() or not ca.is_file():
        logger.debug("Not in a cluster: %s has no token and ca.crt", directory)
        return None
    from kubernetes import client
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.incluster_config import (
        SERVICE_HOST_ENV_NAME,
        SERVICE_PORT_ENV_NAME,
        InClusterConfigLoader,
    )

    configuration = _configuration()
    environ = {SERVICE_HOST_ENV_NAME: host, SERVICE_PORT_ENV_NAME: str(port)}
    loader = InClusterConfigLoader(str(token), str(ca), try_refresh_token=False, environ=environ)
    try:
        loader.load_and_set(configuration)
        configuration.refresh_api_key_hook = _TokenFile(token)
        configuration.refresh_api_key_hook(configuration)
    except (ConfigException, OSError, AccessDenied) as error:
        logger.warning(
            "The service account in %s cannot be used (%s); fix its token and ca.crt",
            directory,
            error,
        )
        return None
    logger.info("Kubernetes API at %s, as the service account in %s", configuration.host, directory)
    return KubeClient(
        client.ApiClient(configuration),
        namespace=_read_namespace(directory / "namespace"),
        timeout_s=timeout_s,
    )


class _TokenFile:
    """Sets the bearer token from a service-account token file, re-read once a minute.

    Kubernetes rotates projected tokens; a newline at the end of a hand-written token
    file would be an invalid header value (and the client's error would quote the token).
    """

    def __init__(self, path: Path, max_age_s: float = 60.0) -> None:
        self._path = path
        self._max_age_s = max_age_s
        self._read_at = -max_age_s
        self._token = ""

    def __call__(self, configuration: Any) -> None:
        now = time.monotonic()
        if now - self._read_at >= self._max_age_s:
            try:
                token = self._path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as error:
                raise AccessDenied(
                    f"cannot read the service account token {self._path} ({error}); "
                    "check the pod's service account mount"
                ) from None
            if not token or any(character.isspace() for character in token):
                raise AccessDenied(
                    f"the service account token {self._path} is empty or malformed; "
                    "check the pod's service account mount"
                )
            self._token, self._read_at = token, now
        configuration.api_key["BearerToken"] = f"Bearer {self._token}"


def _from_kubeconfig(kubeconfig: str, timeout_s: float) -> KubeClient | None:
    if not any(Path(path).expanduser().is_file() for path in kubeconfig.split(os.pathsep)):
        logger.debug("No kubeconfig at %s", kubeconfig)
        return None
    import yaml
    from kubernetes import client
    from kubernetes.config import kube_config
    from kubernetes.config.config_exception import ConfigException

    configuration = _configuration()
    try:
        kube_config.load_kube_config(
            config_file=kubeconfig, client_configuration=configuration, persist_config=False
        )
        _, active = kube_config.list_kube_config_contexts(config_file=kubeconfig)
    except (ConfigException, yaml.YAMLError, OSError, ValueError, TypeError, KeyError) as error:
        logger.warning(
            "The kubeconfig %s cannot be used (%s); fix it or unset KUBECONFIG",
            kubeconfig,
            type(error).__name__,
        )
        return None
    namespace = (active or {}).get("context", {}).get("namespace")
    logger.info("Kubernetes API at %s, from the kubeconfig %s", configuration.host, kubeconfig)
    return KubeClient(client.ApiClient(configuration), namespace=namespace, timeout_s=timeout_s)


def _configuration() -> Any:
    """A new client Configuration that retries nothing itself and leaves logger levels alone."""
    from kubernetes import client

    # Configuration() resets the "client" and "urllib3" loggers to WARNING; undo that.
    levels = {name: logging.getLogger(name).level for name in ("client", "urllib3")}
    configuration = client.Configuration()
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    configuration.retries = False  # KubeClient._call retries, with its own bound
    return configuration


def _read_namespace(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


# ---------------------------------------------------------------------------
# Errors


def _failure(error: Exception, target: _Target, host: str) -> KubeError | None:
    """Our error for what the client raised; None for anything that is not an API failure."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    if isinstance(error, ApiException):
        return _from_status(error, target, host)
    if isinstance(error, (HTTPError, OSError)):
        return ApiUnavailable(
            f"cannot read {target.ref}: the Kubernetes API at {host} did not answer "
            f"({type(error).__name__}: {str(error)[:STATUS_TEXT_MAX]}); check "
            "KUBERNETES_SERVICE_HOST/PORT and that the pod can reach the API server"
        )
    return None


def _retryable(error: Exception) -> bool:
    """Whether another try may help: a refused connection, 429 or 5xx, not a timeout or TLS."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import NewConnectionError
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    if isinstance(error, ApiException):
        return error.status == 429 or (error.status or 0) >= 500
    if isinstance(error, NewConnectionError):  # refused or unreachable, though a TimeoutError
        return True
    return not isinstance(error, (Urllib3Timeout, TimeoutError))


def _from_status(error: Any, target: _Target, host: str) -> KubeError:
    status = error.status or 0
    said = _status_text(error.body, target)
    detail = f" (apiserver: {said})" if said else ""
    if status == 401:
        return AccessDenied(
            f"cannot read {target.ref}: the Kubernetes API at {host} rejected the credentials"
            f"{detail}; check the service account token (or the kubeconfig user)"
        )
    if status == 403:
        return AccessDenied(f"cannot read {target.ref}: forbidden{detail}; {_rbac_fix(target)}")
    if status == 404:
        return ResourceNotFound(
            f"{target.ref} does not exist{detail}; check the name (JOB_NAME, DATASET_NAME, "
            "MODEL_NAME or the job's references) and that Sedna's CRDs are installed"
        )
    if status == 0:
        return ApiUnavailable(
            f"cannot read {target.ref}: no TLS connection to the Kubernetes API at {host}; "
            "check the CA (ca.crt) and the API address"
        )
    if status == 429 or status >= 500:
        return ApiUnavailable(
            f"cannot read {target.ref}: the Kubernetes API at {host} answered {status}{detail}; "
            "it is overloaded or down, try again later"
        )
    return KubeError(f"cannot read {target.ref}: the Kubernetes API answered {status}{detail}")


def _rbac_fix(target: _Target) -> str:
    plural, group = _RESOURCES[target.kind]
    resource = f"{plural}.{group}" if group else plural
    return (
        f"grant the pod's service account '{target.verb}' on {resource} in namespace "
        f'{target.namespace} (a Role rule apiGroups: ["{group}"], resources: ["{plural}"], '
        f'verbs: ["{target.verb}"], bound by a RoleBinding; deploy/rbac.yaml has them all)'
    )


def _status_text(body: Any, target: _Target) -> str | None:
    """The message of an apiserver ``Status`` body, cut short; nothing from any other body."""
    try:
        payload = json.loads(body) if isinstance(body, (str, bytes)) else None
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or payload.get("kind") != "Status":
        return None
    text = str(payload.get("message") or payload.get("reason") or "")[:STATUS_TEXT_MAX]
    logger.debug("The Kubernetes API answered %s for %s: %s", payload.get("code"), target.ref, text)
    return text or None


# ---------------------------------------------------------------------------
# JSON -> records


def _job_record(body: Mapping[str, Any], source: str) -> JobResource:
    metadata = body.get("metadata") or {}
    spec = body.get("spec") or {}
    workers = spec.get("trainingWorkers") or []
    dataset_names = tuple(_dig(worker, "dataset", "name") for worker in workers)
    model_name = _dig(spec, "aggregationWorker", "model", "name")
    if not model_name or not dataset_names or not all(dataset_names):
        raise ResourceError(
            f"{source} lacks spec.aggregationWorker.model.name or a "
            "spec.trainingWorkers[].dataset.name; fix the FederatedLearningJob"
        )
    s3 = _dig(spec, "transmitter", "s3")
    return JobResource(
        name=str(metadata.get("name")),
        namespace=str(metadata.get("namespace")),
        model_name=model_name,
        dataset_names=dataset_names,
        pretrained_model_name=_dig(spec, "pretrainedModel", "name") or None,
        transmitter="s3" if isinstance(s3, Mapping) else "ws",
        agg_data_path=s3.get("aggDataPath") if isinstance(s3, Mapping) else None,
        annotations=MappingProxyType(dict(metadata.get("annotations") or {})),
        proposal_fields=MappingProxyType(
            {name: spec[name] for name in PROPOSAL_FIELDS if spec.get(name) is not None}
        ),
        config_url=_text_or_none(_dig(spec, "aggregationWorker", "platoConfig", "url")),
        aggregator_env=_container_env(_dig(spec, "aggregationWorker", "template", "spec", "containers")),
    )


def _container_env(containers: Any) -> tuple[tuple[str, str], ...]:
    """The first container's env entries that carry a text value."""
    first = containers[0] if isinstance(containers, list) and containers else None
    entries = first.get("env") if isinstance(first, Mapping) else None
    return tuple(
        (entry["name"], entry["value"])
        for entry in (entries if isinstance(entries, list) else ())
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str) and isinstance(entry.get("value"), str)
    )


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dig(node: Any, *keys: str) -> Any:
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _pod_record(pod: Any) -> PodResource:
    labels = dict(pod.metadata.labels or {})
    return PodResource(
        name=pod.metadata.name,
        namespace=pod.metadata.namespace,
        worker_type=labels.get(WORKER_TYPE_LABEL),
        phase=pod.status.phase if pod.status else None,
        node_name=pod.spec.node_name if pod.spec else None,
        pod_ip=pod.status.pod_ip if pod.status else None,
        labels=MappingProxyType(labels),
    )
