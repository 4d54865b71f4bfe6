"""Storage: turns any supported URL into a local path through the cache, and publishes files."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Self

from plato_sedna.errors import ResourceError
from plato_sedna.storage.archives import is_archive, unpack
from plato_sedna.storage.cache import (
    CacheEntry,
    DownloadCache,
    Manifest,
    cache_key,
    remove_tree,
)
from plato_sedna.storage.local import publish_local, resolve_local
from plato_sedna.storage.progress import PROGRESS_THRESHOLD_BYTES, TransferStats
from plato_sedna.storage.remote import Remote, RemoteOptions, Unreachable
from plato_sedna.storage.settings import S3Settings
from plato_sedna.storage.urls import Location, load_backend, parse_url

if TYPE_CHECKING:
    from plato_sedna.context import SednaContext

logger = logging.getLogger(__name__)

DEFAULT_MAX_WORKERS = 8
_RAW_VARIANT = "#raw"  # the cache key of an archive kept packed (unpack=False)


class Storage:
    """Local paths for file, s3 and http(s) URLs, with a revalidated download cache.

    Parameters
    ----------
    cache_dir : Path
        Where downloads are kept; entries are named by the URL's sha256.
    s3 : S3Settings | None
        Endpoint and keys for ``s3://`` (None: boto3's own configuration).
    data_path_prefix : str | None
        Sedna's ``DATA_PATH_PREFIX``: where hostPaths are mounted in the pod.
    max_workers : int
        Concurrent downloads in :meth:`fetch_many` and within one prefix.
    progress_threshold : int
        Transfers of at least this many bytes report progress.

    Attributes
    ----------
    stats : TransferStats
        Bytes and files this storage moved, and its cache hits.
    """

    def __init__(
        self,
        cache_dir: Path,
        s3: S3Settings | None = None,
        data_path_prefix: str | None = None,
        *,
        max_workers: int = DEFAULT_MAX_WORKERS,
        progress_threshold: int = PROGRESS_THRESHOLD_BYTES,
    ) -> None:
        self.cache = DownloadCache(Path(cache_dir))
        self.data_path_prefix = data_path_prefix
        self.max_workers = max_workers
        self.stats = TransferStats()
        self._options = RemoteOptions(self.stats, s3, max_workers, progress_threshold)
        self._remotes: dict[str, Remote] = {}
        self._remotes_lock = threading.Lock()

    @classmethod
    def from_context(cls, context: SednaContext, cache_dir: Path, **options) -> Storage:
        """A storage with the S3 settings and ``DATA_PATH_PREFIX`` Sedna injected."""
        return cls(
            cache_dir,
            S3Settings.from_context(context),
            context.data_path_prefix,
            **options,
        )

    def to_local_path(self, url: str, *, unpack: bool = True) -> Path:
        """A local path holding what ``url`` names.

        Local paths and ``file://`` URLs are returned as they are (tried under
        ``data_path_prefix`` when missing). Remote objects are downloaded into the
        cache, or revalidated there with no transfer when current; an ``s3://`` prefix
        becomes a folder; a zip or tar archive becomes the folder it unpacks to (unless
        ``unpack`` is False). Paths inside the cache are read-only.

        Raises
        ------
        ResourceError
            When the URL is missing, unreachable, refused, or of an unsupported scheme;
            the message names the URL (and endpoint) and what to check.
        ImportError
            When the scheme's client library (boto3 for s3) is not installed.
        """
        location = parse_url(url)
        if location.is_local:
            return resolve_local(location.path, url, self.data_path_prefix)
        return self._fetch(location, unpack and is_archive(location.name))

    def fetch_many(self, urls: Iterable[str], *, max_workers: int | None = None) -> list[Path]:
        """:meth:`to_local_path` of each URL, in order, remote ones fetched concurrently."""
        urls = list(urls)
        unique = list(dict.fromkeys(urls))
        workers = min(max_workers or self.max_workers, max(len(unique), 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="storage") as pool:
            futures = {url: pool.submit(self.to_local_path, url) for url in unique}
            try:
                paths = {url: future.result() for url, future in futures.items()}
            except BaseException:
                for future in futures.values():
                    future.cancel()
                raise
        return [paths[url] for url in urls]

    def publish(self, local_file: Path, url: str) -> None:
        """Put ``local_file`` at ``url``: a local path (atomically replaced) or an ``s3://`` URL.

        A URL ending in ``/`` (or an existing local folder) receives the file under its name.

        Raises
        ------
        ResourceError
            When ``local_file`` is not a file, the destination is refused or unreachable,
            or the scheme cannot be written (http).
        """
        local_file = Path(local_file)
        if not local_file.is_file():
            raise ResourceError(f"cannot publish {local_file} to {url}: it is not a file")
        location = parse_url(url)
        if not location.is_local:
            self._remote(location.scheme).upload(local_file, location)
            return
        destination = Path(location.path)
        if location.path.endswith("/") or destination.is_dir():
            destination = destination / local_file.name
        publish_local(local_file, destination)

    def publish_atomically(self, local_file: Path, url: str) -> None:
        """:meth:`publish`; to s3 through a temporary key copied into place, then deleted.

        Readers of ``url`` see the old object or the whole new one, never a part.
        """
        location = parse_url(url)
        if location.is_local or location.is_prefix:
            self.publish(local_file, url)
            return
        remote = self._writable(location)
        folder, _, name = location.path.rpartition("/")
        temp_key = f"{folder}/.{name}.{uuid.uuid4().hex[:12]}.tmp".lstrip("/")
        temp = Location(f"s3://{location.netloc}/{temp_key}", location.scheme, location.netloc, temp_key)
        remote.upload(Path(local_file), temp)
        try:
            remote.copy(temp, location)
        finally:
            remote.delete(temp)

    def list_folder(self, url: str) -> list[str]:
        """The names directly under the folder ``url`` (local or s3), sorted; [] when there is none."""
        location = parse_url(url)
        if location.is_local:
            folder = Path(location.path)
            return sorted(child.name for child in folder.iterdir()) if folder.is_dir() else []
        remote = self._writable(location)
        prefix = location.path.rstrip("/") + "/" if location.path else ""
        try:
            keys = remote.keys_under(location)
        except ResourceError:
            return []  # an empty prefix
        return sorted({key[len(prefix) :].split("/")[0] for key in keys})

    def delete(self, url: str) -> None:
        """Remove the file or folder ``url`` names (locally, or every s3 key under it)."""
        location = parse_url(url)
        if location.is_local:
            remove_tree(Path(location.path))
            return
        remote = self._writable(location)
        try:
            keys = remote.keys_under(location)
        except ResourceError:
            keys = []
        for key in keys or [location.path]:
            remote.delete(Location(f"s3://{location.netloc}/{key}", location.scheme, location.netloc, key))

    def _writable(self, location: Location) -> Remote:
        remote = self._remote(location.scheme)
        if not hasattr(remote, "copy"):
            raise ResourceError(f"{location.display}: {location.scheme} URLs cannot be written; use s3:// or a path")
        return remote

    def close(self) -> None:
        """Stop the backends' transfer threads."""
        with self._remotes_lock:
            for remote in self._remotes.values():
                close = getattr(remote, "close", None)
                if close is not None:
                    close()
            self._remotes.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _remote(self, scheme: str) -> Remote:
        with self._remotes_lock:
            if scheme not in self._remotes:
                self._remotes[scheme] = load_backend(scheme)(self._options)
            return self._remotes[scheme]

    def _fetch(self, location: Location, unpack_archive: bool) -> Path:
        remote = self._remote(location.scheme)
        kept_packed = is_archive(location.name) and not unpack_archive
        key = cache_key(location.url, _RAW_VARIANT if kept_packed else "")
        with self.cache.entry(key) as entry:
            cached = entry.manifest()
            staging = entry.staging_dir()
            try:
                manifest = self._refresh(remote, location, entry, cached, staging)
                if manifest is None:
                    self.stats.add(cache_hits=1)
                    logger.debug("%s is current in the cache", location.display)
                    return entry.payload(cached)
                if unpack_archive and manifest.get("file_name"):
                    manifest = self._unpack(entry, staging, manifest, location)
                manifest["url"] = location.display
                entry.commit(staging, manifest)
                logger.info("fetched %s into %s", location.display, entry.payload(manifest))
                return entry.payload(manifest)
            finally:
                if staging.exists():
                    remove_tree(staging)

    def _refresh(
        self,
        remote: Remote,
        location: Location,
        entry: CacheEntry,
        cached: Manifest | None,
        staging: Path,
    ) -> Manifest | None:
        cached_dir = entry.data_dir if cached is not None else None
        try:
            return remote.refresh(location, cached, cached_dir, staging)
        except Unreachable as error:
            if cached is None:
                raise
            logger.warning(
                "using the cached copy of %s, which could not be revalidated: %s",
                location.display,
                error,
            )
            return None

    @staticmethod
    def _unpack(
        entry: CacheEntry, staging: Path, manifest: Manifest, location: Location
    ) -> Manifest:
        """Replace the archive in ``staging`` by its content."""
        archive = entry.temp_path("archive")
        (staging / manifest["file_name"]).rename(archive)
        try:
            unpack(archive, manifest["file_name"], staging, location.display)
        finally:
            archive.unlink(missing_ok=True)
        return {**manifest, "file_name": None, "unpacked": manifest["file_name"]}
