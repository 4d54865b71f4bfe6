"""What every remote backend offers the storage layer, and the options it is built with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from plato_sedna.errors import ResourceError
from plato_sedna.storage.cache import Manifest
from plato_sedna.storage.progress import PROGRESS_THRESHOLD_BYTES, TransferStats
from plato_sedna.storage.settings import S3Settings
from plato_sedna.storage.urls import Location


class Unreachable(ResourceError):
    """The remote did not answer (connection refused, timeout): a cached copy may still serve."""


@dataclass(frozen=True)
class RemoteOptions:
    """What a backend is built with.

    Attributes
    ----------
    stats : TransferStats
        Where it counts the bytes and files it moves.
    s3 : S3Settings | None
        Endpoint and keys for s3:// (None: boto3's defaults).
    max_workers : int
        Concurrent requests for one fetch of many objects.
    progress_threshold : int
        Transfers of at least this many bytes report progress.
    """

    stats: TransferStats
    s3: S3Settings | None = None
    max_workers: int = 8
    progress_threshold: int = PROGRESS_THRESHOLD_BYTES


class Remote(Protocol):
    """A backend for one kind of remote URL."""

    def refresh(
        self, location: Location, cached: Manifest | None, cached_dir: Path | None, staging: Path
    ) -> Manifest | None:
        """Download ``location`` into ``staging`` unless ``cached`` is still current.

        Parameters
        ----------
        location : Location
            What to fetch.
        cached : Manifest | None
            The committed entry's manifest, None when there is none.
        cached_dir : Path | None
            The committed entry's folder (its unchanged files may be reused).
        staging : Path
            An empty folder: a single object is written as ``staging/<name>``, a
            prefix as the tree of its objects.

        Returns
        -------
        Manifest | None
            None when the cached copy is current; else the new manifest (``source``
            "object" with ``file_name``, or "prefix"; ``validators``).
        """
        ...

    def upload(self, source: Path, location: Location) -> None:
        """Publish the local file ``source`` at ``location``."""
        ...
