"""Choosing and checking the transmitter when a pod starts, before anything trains."""

from __future__ import annotations

import logging

from plato_sedna.errors import ResourceError
from plato_sedna.storage.settings import S3Settings
from plato_sedna.transport.folder import PayloadFolder
from plato_sedna.transport.store import PayloadStore

LOGGER = logging.getLogger(__name__)


def open_payload_store(
    transmitter: str,
    agg_data_path: str | None,
    settings: S3Settings,
    *,
    namespace: str | None = None,
    job_name: str | None = None,
    sweep: bool = False,
) -> PayloadStore | None:
    """The checked :class:`PayloadStore` for ``TRANSMITTER=s3``; None for ``ws`` (Plato's socket).

    Parameters
    ----------
    transmitter : str
        ``ws`` or ``s3`` (Sedna's ``TRANSMITTER``).
    agg_data_path : str | None
        Sedna's ``AGG_DATA_PATH``, ``s3://bucket/prefix``.
    settings : S3Settings
        The transmitter's endpoint and keys.
    namespace, job_name : str | None
        The job, whose own folder under ``AGG_DATA_PATH`` holds its payloads.
    sweep : bool (default: False)
        Delete payload objects an earlier run of the job left (the aggregator does, at start).

    Raises
    ------
    ConfigError
        When ``AGG_DATA_PATH`` is unset or not an s3:// URL.
    ResourceError
        When the endpoint is unreachable, the bucket missing or access refused.
    """
    if transmitter != "s3":
        return None
    folder = PayloadFolder.from_agg_data_path(agg_data_path, namespace=namespace, job_name=job_name)
    store = PayloadStore(folder, settings)
    try:
        store.check()
    except BaseException:
        store.close()
        raise
    if sweep:
        _sweep_leftovers(store)
    LOGGER.info("Model payloads go through %s at S3 endpoint %s", folder.url, store.endpoint)
    return store


def _sweep_leftovers(store: PayloadStore) -> None:
    """Delete what an earlier run left; keys that may write but not list only get a warning."""
    try:
        store.sweep()
    except ResourceError as error:
        LOGGER.warning("Could not sweep leftover payload objects from %s: %s", store.folder.url, error)
