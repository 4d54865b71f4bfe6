"""The environment of each local worker: what Sedna's GlobalManager would inject, on loopback."""

import itertools
import logging
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

from plato_sedna.context import (
    HE_ALGORITHM,
    HE_CONTEXT_FILE_ENV,
    HYPERPARAMETER_NAMES,
    MANIFESTS_ENV,
    MPC_ALGORITHMS,
    MPC_STORE_URL_ENV,
    POD_FILE_ENV,
    TLS_CA_FILE_ENV,
    TLS_CERT_FILE_ENV,
    TLS_KEY_FILE_ENV,
    TOKEN_ENV,
    TOKEN_FILE_ENV,
)
from plato_sedna.local.isolation import DATA_PATH_PREFIX_ENV, HOST_PATH_PREFIX, container_url, on_node_root
from plato_sedna.local.manifests import JobSpec, WorkerSpec

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# The GM's aggregation port (createAggPod, createTrainPod); a local run picks a free one.
AGG_PORT = 7363
# GM config localController.server's default, which trainers get as LC_SERVER (config.go).
GM_LC_SERVER = "http://localhost:9100"
# buildS3SecretEnvs (secret_injector.go): annotations and keys of a credentialName Secret.
S3_ENDPOINT_ANNOTATION, S3_USE_HTTPS_ANNOTATION = "s3-endpoint", "s3-usehttps"
SECRET_KEYS = ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY")

# Every variable Sedna injects or its library reads: never inherited from the
# shell that starts the job, only set by the injection or the pod template.
SEDNA_MANAGED_ENV = frozenset(
    ["NAMESPACE", "WORKER_NAME", "JOB_NAME", "AGG_BIND_PORT", "AGG_PORT", "AGG_IP", "PARTICIPANTS_COUNT", "TRANSMITTER", "AGG_DATA_PATH", "MODEL_URL", "PRETRAINED_MODEL_URL", "MODEL_NAME", "DATASET_NAME", "TRAIN_DATASET_URL", "TEST_DATASET_URL", "DATA_PATH_PREFIX", "LC_SERVER", "S3_ENDPOINT_URL", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SEDNA_ROLE", "config_file", "AGG_BIND_IP", "AGG_PROTOCOL", "CONNECT_TIMEOUT"]
)
# The launcher reads these case-insensitively: a stray EPOCHS in the shell must not change the job.
HYPERPARAMETER_ENV = frozenset(HYPERPARAMETER_NAMES)

# Math-library thread counts, set for each worker unless the template or shell sets them.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

# Template variables that name input data: relative paths resolve beside the manifests.
TEMPLATE_INPUT_URLS = frozenset({"TEST_DATASET_URL"})

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def is_remote_url(url: str) -> bool:
    """Whether url has a scheme (``s3://``, ``http://``, ...) rather than being a path."""
    return _SCHEME_RE.match(url) is not None


def local_url(url: str, base: Path) -> str:
    """url with a relative path resolved against base; absolute paths and URLs unchanged."""
    if is_remote_url(url) or Path(url).is_absolute():
        return url
    resolved = str(Path(base).resolve() / url)
    return resolved + "/" if url.endswith("/") else resolved  # a trailing / marks a folder


def aggregation_service(job: JobSpec) -> str:
    """The aggregation Service's name, the GM's ``AGG_IP`` (``CreateEdgeMeshService``)."""
    return f"{job.name}-aggregation".lower() + f".{job.namespace}"


def worker_urls(job: JobSpec, worker: WorkerSpec, workdir: Path) -> dict[str, tuple[str, bool]]:
    """The urls the GM mounts for a worker (``addWorkerMount``), as paths on this machine.

    Env name -> (url, downloaded by the storage-initializer). Relative paths resolve as
    ``local_url`` says: the aggregation Model and ``aggDataPath`` against the workdir
    (outputs), the others beside the manifests.
    """
    urls = {"MODEL_URL": (local_url(job.model.url, workdir), True)}
    if job.pretrained_model is not None:
        urls["PRETRAINED_MODEL_URL"] = (local_url(job.pretrained_model.url, job.source_dir), True)
    if worker.dataset is not None:
        urls["TRAIN_DATASET_URL"] = (local_url(worker.dataset.url, job.source_dir), True)
    if job.agg_data_path is not None:
        urls["AGG_DATA_PATH"] = (local_url(job.agg_data_path, workdir), False)
    return urls


def manifest_urls(job: JobSpec, worker: WorkerSpec) -> dict[str, str]:
    """The urls of :func:`worker_urls` as the manifests write them (env name -> url)."""
    urls = {"MODEL_URL": job.model.url}
    if job.pretrained_model is not None:
        urls["PRETRAINED_MODEL_URL"] = job.pretrained_model.url
    if worker.dataset is not None:
        urls["TRAIN_DATASET_URL"] = worker.dataset.url
    if job.agg_data_path is not None:
        urls["AGG_DATA_PATH"] = job.agg_data_path
    return urls


def hostpath_mounts(
    job: JobSpec, worker: WorkerSpec, workdir: Path, node_dir: Path | None = None
) -> list[tuple[str, str]]:
    """(host folder, container folder) of each hostPath volume the GM gives this worker's pod.

    With node_dir (the worker's node under ``--nodes``), the host folder of a url the
    manifests write as an absolute path is that folder under node_dir.
    """
    mounts = []
    written = manifest_urls(job, worker)
    for name, (url, by_initializer) in worker_urls(job, worker, workdir).items():
        mount = container_url(url, download_by_initializer=by_initializer)
        if mount.host_dir is None:
            continue
        host_dir = mount.host_dir
        if node_dir is not None and on_node_root(written[name]):
            host_dir = str(Path(node_dir) / host_dir.lstrip("/")).rstrip("/") + "/"
        mounts.append((host_dir, mount.mount_path))
    return mounts


def injected_env(
    job: JobSpec,
    worker: WorkerSpec,
    *,
    agg_port: int,
    workdir: Path,
    lc_server: str | None = None,
    agg_host: str = LOOPBACK,
    container_paths: bool = False,
) -> dict[str, str]:
    """The variables Sedna's GlobalManager would inject into this worker's pod.

    ``lc_server`` is the LocalController URL a trainer gets as ``LC_SERVER``; the
    aggregator never gets one, as in Sedna. ``agg_host`` is the trainers' ``AGG_IP``:
    loopback, or the Service name (:func:`aggregation_service`) where the run gives
    each worker an /etc/hosts naming it. With ``container_paths`` hostPath urls become
    the GM's ``/home/data/<path>`` (with ``DATA_PATH_PREFIX``), which only a worker with
    those folders mounted there can read; urls with a scheme stay as they are (no
    storage-initializer runs locally: the worker fetches them itself).
    """
    env = {
        "NAMESPACE": job.namespace,
        "JOB_NAME": job.name,
        "PARTICIPANTS_COUNT": str(len(job.trainers)),
        "TRANSMITTER": job.transmitter,
    }
    for name, (url, by_initializer) in worker_urls(job, worker, workdir).items():
        mount = container_url(url, download_by_initializer=by_initializer)
        if container_paths and mount.host_dir is not None:
            env[name] = mount.env_value
            env[DATA_PATH_PREFIX_ENV] = HOST_PATH_PREFIX  # injectHostPathMount
        else:
            env[name] = url
    env.update(secret_env(job))
    if worker.dataset is None:
        env["WORKER_NAME"] = "aggworker-" + _random_suffix()
        env["AGG_BIND_PORT"] = str(agg_port)
        return env
    env["WORKER_NAME"] = "trainworker-" + _random_suffix()
    env["AGG_IP"] = agg_host
    env["AGG_PORT"] = str(agg_port)
    env["MODEL_NAME"] = job.model.name
    env["DATASET_NAME"] = worker.dataset.name
    if lc_server:
        env["LC_SERVER"] = lc_server
    return env


def secret_env(job: JobSpec) -> dict[str, str]:
    """The s3 transmitter's credentialName Secret as the GM injects it into every worker.

    ``buildS3SecretEnvs``: ``S3_ENDPOINT_URL`` (``https://`` + the ``s3-endpoint``
    annotation, ``http://`` when ``s3-usehttps`` is ``"0"``), ``ACCESS_KEY_ID`` and
    ``SECRET_ACCESS_KEY`` from the data. Dataset and Model Secrets go only to the
    storage-initializer, never to the worker. A Secret the manifests lack, or one
    without the endpoint annotation, gives nothing (with a warning): then the pod
    template's env must carry the credentials.
    """
    name = job.transmitter_secret
    if job.transmitter != "s3" or not name:
        return {}
    secret = job.secrets.get(name)
    if secret is None:
        _warn_once(
            f"{job.ref}: spec.transmitter.s3.credentialName names Secret {job.namespace}/{name}, "
            "which the manifests lack; Sedna's GM would not create the pods without it. The run "
            "goes on: S3 credentials must come from the templates' env"
        )
        return {}
    endpoint = secret.annotations.get(S3_ENDPOINT_ANNOTATION, "")
    if not endpoint:
        _warn_once(
            f"{job.ref}: Secret {job.namespace}/{name} has no {S3_ENDPOINT_ANNOTATION} annotation; "
            "Sedna's GM injects none of its keys then (buildS3SecretEnvs)"
        )
        return {}
    scheme = "http" if secret.annotations.get(S3_USE_HTTPS_ANNOTATION) == "0" else "https"
    env = {"S3_ENDPOINT_URL": f"{scheme}://{endpoint}"}
    env.update({key: secret.data.get(key, "") for key in SECRET_KEYS})
    return env


@cache
def _warn_once(message: str) -> None:
    logger.warning("%s", message)


def _random_suffix() -> str:
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))


def inherited_env(environ: Mapping[str, str]) -> dict[str, str]:
    """environ without the variables Sedna manages and the hyperparameter ones."""
    return {
        name: value
        for name, value in environ.items()
        if name not in SEDNA_MANAGED_ENV and name.lower() not in HYPERPARAMETER_ENV
    }


def worker_env(
    job: JobSpec,
    worker: WorkerSpec,
    *,
    agg_port: int,
    workdir: Path,
    inherited: Mapping[str, str] | None = None,
    lc_server: str | None = None,
    tls: bool = False,
    algorithms: frozenset[str] = frozenset(),
    agg_host: str = LOOPBACK,
    container_paths: bool = False,
) -> dict[str, str]:
    """The full environment of one local worker process.

    Parameters
    ----------
    job, worker : JobSpec, WorkerSpec
        The job and the worker to run.
    agg_port : int
        The loopback port the aggregator binds and the trainers connect to.
    workdir : Path
        The run's folder; a relative aggregation Model url resolves against it.
    inherited : Mapping[str, str] | None (default: None, meaning os.environ)
        The parent environment; Sedna-managed variables are dropped from it.
    lc_server : str | None (default: None)
        The LocalController URL the trainers get as ``LC_SERVER`` (``--lc-server``).
    tls : bool (default: False)
        Serve the aggregator link over TLS with the run's throwaway CA (``--tls``); TLS files
        the template names but this machine lacks (Secret mounts) get the same stand-ins.
    algorithms : frozenset[str] (default: empty)
        What the job runs (:func:`job_algorithms`): with fedavg_he, a worker without the
        job's CKKS context file gets the run's own; with fedavg_mpc_*, the run's folder
        ``<workdir>/mpc`` is the round store unless the template or transmitter gives one.
    agg_host, container_paths : str, bool (default: loopback, False)
        The trainers' ``AGG_IP`` and whether hostPath urls are the GM's ``/home/data``
        paths (:func:`injected_env`); the runner sets them where workers get their own
        mount namespace (plato_sedna.local.isolation).

    Returns
    -------
    dict[str, str]
        The inherited variables, ``PYTHONUNBUFFERED=1``, the template's env,
        then the Sedna-injected variables, which win any clash; ``PLATO_SEDNA_TOKEN``
        is the run's random trainer token unless the shell or template sets a token.
    """
    env = inherited_env(os.environ if inherited is None else inherited)
    env["PYTHONUNBUFFERED"] = "1"
    injected = injected_env(
        job,
        worker,
        agg_port=agg_port,
        workdir=workdir,
        lc_server=lc_server,
        agg_host=agg_host,
        container_paths=container_paths,
    )
    for name, value in worker.env:
        if name in injected:
            logger.warning(
                "%s: worker %s sets %s in its template env; Sedna injects %s, so %r is ignored",
                job.ref,
                worker.key,
                name,
                name,
                value,
            )
        env[name] = local_url(value, job.source_dir) if name in TEMPLATE_INPUT_URLS else value
    env.update(injected)
    env[MANIFESTS_ENV] = str(job.manifests_path or job.source_file)
    _stand_in_for_secret_mounts(env, job, worker, workdir, tls)
    if HE_ALGORITHM in algorithms and not env.get(HE_CONTEXT_FILE_ENV):
        env[HE_CONTEXT_FILE_ENV] = _run_he_context(str(workdir))
    if algorithms & set(MPC_ALGORITHMS) and not env.get(MPC_STORE_URL_ENV) and job.transmitter != "s3":
        env[MPC_STORE_URL_ENV] = str(Path(workdir).resolve() / "mpc") + "/"
    if not env.get(TOKEN_ENV) and not env.get(TOKEN_FILE_ENV):
        env[TOKEN_ENV] = _run_token(job.ref, str(workdir), agg_port)
    for name in THREAD_ENV:
        env.setdefault(name, str(_threads_per_worker(len(job.trainers))))
    return env


def _stand_in_for_secret_mounts(
    env: dict[str, str], job: JobSpec, worker: WorkerSpec, workdir: Path, tls: bool
) -> None:
    """Files of the pods' Secret mounts that this machine lacks: the run brings its own.

    The token file gives way to the run's token; TLS files (``render --tls-secret``) to a
    throwaway CA and loopback certificate in the run folder, so the link still runs over TLS.
    """
    missing = sorted(name for name in POD_FILE_ENV if env.get(name) and not Path(env[name]).exists())
    if missing:
        logger.info("%s: worker %s: %s name files of Secret mounts; this run provides its own", job.ref, worker.key, ", ".join(missing))
    for name in missing:
        del env[name]
    if tls or any(name not in (TOKEN_FILE_ENV, HE_CONTEXT_FILE_ENV) for name in missing):
        files = _run_tls_files(str(workdir), aggregation_service(job))
        if worker.dataset is None:
            env.update({TLS_CERT_FILE_ENV: str(files.cert_file), TLS_KEY_FILE_ENV: str(files.key_file)})
        else:
            env[TLS_CA_FILE_ENV] = str(files.ca_file)


def _run_tls_files(workdir: str, service: str):
    """One throwaway CA and aggregator certificate per local run, under ``<workdir>/tls``.

    The certificate names loopback and the aggregation Service, whichever ``AGG_IP`` is.
    """
    files = _written_tls_files(workdir, service)
    if not files.key_file.exists():  # the folder was cleared since: a new run there
        _written_tls_files.cache_clear()
        files = _written_tls_files(workdir, service)
    return files


@cache
def _written_tls_files(workdir: str, service: str):
    from plato_sedna.local.certificates import LOOPBACK_NAMES, write_tls_files

    return write_tls_files(Path(workdir) / "tls", (*LOOPBACK_NAMES, service))


def job_algorithms(job: JobSpec, argvs: Iterable[tuple[str, ...]]) -> frozenset[str]:
    """The algorithms a job's workers name: by ``aggregation_algorithm`` env, or their config's ``server.type``."""
    named = {value for worker in job.workers for name, value in worker.env if name.lower() == "aggregation_algorithm"}
    named |= {_config_server_type(argv) for argv in argvs}
    return frozenset(name for name in named if name)


def _config_server_type(argv: tuple[str, ...]) -> str | None:
    """``server.type`` of the local config file a worker's command names; None for URLs and errors."""
    from plato_sedna.config import load_config_file
    from plato_sedna.errors import PlatoSednaError

    for flag, value in itertools.pairwise(argv):
        if flag in ("-c", "--config") and not is_remote_url(value):
            try:
                return (load_config_file(value).get("server") or {}).get("type")
            except (PlatoSednaError, OSError):
                return None  # the worker reports its own config error
    return None


def _run_he_context(workdir: str) -> str:
    """One CKKS context per local run, under ``<workdir>/he``, as the job's Secret would give the pods."""
    path = Path(workdir) / "he" / "context"
    if not path.exists():
        from plato_sedna.he_context import write_context

        write_context(path)
        logger.info("fedavg_he: this run's CKKS context is %s (in pods: a Secret, see docs/algorithms.md)", path)
    return str(path)


@cache
def _run_token(job_ref: str, workdir: str, agg_port: int) -> str:
    """One random trainer token per local run (its job, folder and port), shared by its workers."""
    return secrets.token_urlsafe(32)


def _threads_per_worker(trainer_count: int) -> int:
    """Share the cores among the trainers: N processes each using every core crawl."""
    return max(1, (os.cpu_count() or 1) // max(1, trainer_count))
