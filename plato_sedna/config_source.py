"""Where the Plato config comes from: a local path, or a URL fetched through the storage layer.

The seed proposal keeps configs "in S3 or GitHub": ``plato -c s3://bucket/fedavg.toml``
and ``-c https://host/fedavg.yml`` are fetched into ``<base>/cache`` (revalidated on
the next start, credentials from Sedna's S3 variables) and then loaded like a local file.
A container with no ``-c`` (Sedna's examples give none) takes the job's
``spec.aggregationWorker.platoConfig.url``, else Plato's ``./config.toml`` or the
image's ``/config/fedavg.toml``; with none of them the config is built from the job.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from plato_sedna.errors import ConfigError
from plato_sedna.worker_storage import CACHE_FOLDER

if TYPE_CHECKING:
    from plato_sedna.context import SednaContext
    from plato_sedna.resources import JobFacts

LOGGER = logging.getLogger(__name__)

# Where a worker looks when its container names no config: Plato's own default, then the
# ConfigMap mount the images and `plato-sedna render` use.
DEFAULT_CONFIGS = ("./config.toml", "/config/fedavg.toml")


def is_remote(config: str) -> bool:
    """Whether ``config`` is a URL the storage layer fetches (s3://, http(s)://)."""
    from plato_sedna.storage.urls import parse_url

    return not parse_url(config).is_local


def local_config(config: str, base: str, context: SednaContext) -> Path:
    """A local file holding the config ``-c`` names, fetched first when it is a URL.

    Raises
    ------
    ResourceError
        When the URL is unsupported, unreachable or refused (naming it, never a secret).
    ConfigError
        When the URL names a folder or prefix instead of one file.
    """
    from plato_sedna.storage import Storage
    from plato_sedna.storage.urls import parse_url

    location = parse_url(config)
    if location.is_local:
        return Path(location.path)
    storage = Storage.from_context(context, Path(base) / CACHE_FOLDER)
    path = storage.to_local_path(config, unpack=False)
    if path.is_dir():
        raise ConfigError(
            f"-c {location.display} names a folder, not a config file; point it at the "
            ".toml or .yml file itself"
        )
    return path


def _beside_manifests(url: str, context: SednaContext) -> str:
    """A relative platoConfig.url: beside the manifests `plato-sedna run` gives, else the working folder."""
    if not context.manifests or is_remote(url) or Path(url).is_absolute():
        return url
    manifests = Path(context.manifests)
    return str((manifests if manifests.is_dir() else manifests.parent) / url)


def chosen_config(config: str | None, base: str, context: SednaContext, job: JobFacts | None) -> Path | None:
    """The local config file this worker runs, or None when the config is to be built from the job.

    ``config`` is what ``-c`` names (None when the container names none).
    """
    if config is not None:
        return local_config(config, base, context)
    if job is not None and job.config_url:
        return local_config(_beside_manifests(job.config_url, context), base, context)
    for default in DEFAULT_CONFIGS:
        if Path(default).is_file():
            return Path(default)
    return None


def config_to_run(config: str | None, base: str, context: SednaContext, job: JobFacts | None) -> dict:
    """The loaded config this worker runs: the one :func:`chosen_config` finds, else ``{}``
    in a pod (config.resolve_config builds it from the job and the env).

    Raises
    ------
    ConfigError
        Outside a pod when there is no config to run, or when the config does not load.
    """
    from plato_sedna.config import load_config_file

    path = chosen_config(config, base, context, job)
    if path is not None:
        return load_config_file(path)
    if context.role == "plain":
        raise ConfigError(f"no Plato config: {' and '.join(DEFAULT_CONFIGS)} do not exist; pass one with -c")
    LOGGER.info("No Plato config given: building it from the job and the pod's env")
    return {}
