"""s3:// through boto3: revalidation by ETag and size, multipart transfers, errors that guide."""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import boto3
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    NoCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from s3transfer.exceptions import RetriesExceededError, S3DownloadFailedError
from s3transfer.subscribers import BaseSubscriber

from plato_sedna.errors import ResourceError
from plato_sedna.storage.cache import Manifest
from plato_sedna.storage.progress import Progress
from plato_sedna.storage.remote import RemoteOptions, Unreachable
from plato_sedna.storage.urls import Location

logger = logging.getLogger(__name__)

MB = 1024 * 1024
TRANSFER_CONFIG = TransferConfig(
    multipart_threshold=8 * MB, multipart_chunksize=8 * MB, max_concurrency=10
)
MAX_ATTEMPTS = 3  # botocore's standard retry mode: connection errors, 5xx, throttling
CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60
_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
_DENIED_CODES = {"403", "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


class _ObjectChanged(Exception):
    """The object changed between its HEAD and its download (If-Match failed)."""


class _Subscriber(BaseSubscriber):
    """Gives s3transfer the size and ETag we already know (no second HEAD) and forwards progress.

    With an ETag, s3transfer sends If-Match with each ranged GET of a multipart download.
    """

    def __init__(self, size: int | None, progress: Progress, etag: str | None = None) -> None:
        self._size = size
        self._etag = etag
        self._progress = progress

    def on_queued(self, future, **kwargs) -> None:
        if self._size is not None:
            future.meta.provide_transfer_size(self._size)
        if self._etag is not None:
            future.meta.provide_object_etag(self._etag)

    def on_progress(self, future, bytes_transferred: int, **kwargs) -> None:
        self._progress(bytes_transferred)


class S3Remote:
    """Objects and prefixes of an S3 API (AWS, MinIO, ...), with one transfer pool per storage."""

    def __init__(self, options: RemoteOptions) -> None:
        self._options = options
        self._settings = options.s3
        self._client = _make_client(options)
        self._transfers = create_transfer_manager(self._client, TRANSFER_CONFIG)

    @property
    def endpoint(self) -> str:
        return self._settings.endpoint_name if self._settings else "the default AWS S3 endpoint"

    def refresh(
        self, location: Location, cached: Manifest | None, cached_dir: Path | None, staging: Path
    ) -> Manifest | None:
        """Download the object or prefix ``location`` names unless ``cached`` is current."""
        try:
            return self._refresh_once(location, cached, cached_dir, staging)
        except _ObjectChanged:
            logger.info("%s changed while downloading; fetching it again", location.url)
        try:
            return self._refresh_once(location, cached, cached_dir, staging)
        except _ObjectChanged:
            raise ResourceError(
                f"{location.url} kept changing while it was downloaded; try again later"
            ) from None

    def _refresh_once(
        self, location: Location, cached: Manifest | None, cached_dir: Path | None, staging: Path
    ) -> Manifest | None:
        cached_prefix = cached is not None and cached.get("source") == "prefix"
        if location.is_prefix or cached_prefix:
            return self._refresh_prefix(location, cached, cached_dir, staging)
        head = self._head(location)
        if head is None:
            return self._refresh_prefix(location, cached, cached_dir, staging)
        validators = {"etag": head["ETag"], "size": head["ContentLength"]}
        if cached is not None and cached.get("validators") == validators:
            return None
        self._download_all(location, [(location.path, staging / location.name, validators)])
        return {"source": "object", "file_name": location.name, "validators": validators}

    def _refresh_prefix(
        self, location: Location, cached: Manifest | None, cached_dir: Path | None, staging: Path
    ) -> Manifest | None:
        prefix = location.path if location.is_prefix else location.path + "/"
        members = self._list(location, prefix)
        if not members:
            raise ResourceError(self._missing_message(location))
        if cached is not None and cached.get("members") == members:
            return None
        old_members = cached.get("members", {}) if cached else {}
        downloads = []
        for relative, validators in members.items():
            target = staging / relative
            _make_parent(target, location)
            if not _reuse(old_members.get(relative) == validators, cached_dir, relative, target):
                downloads.append((prefix + relative, target, validators))
        self._download_all(location, downloads)
        total = sum(validators["size"] for validators in members.values())
        return {
            "source": "prefix",
            "members": members,
            "validators": {"objects": len(members), "size": total},
        }

    def _download_all(self, location: Location, downloads: list[tuple[str, Path, dict]]) -> None:
        """Download ``(key, target, validators)`` items concurrently, pinned to their ETags."""
        total = sum(validators["size"] for _, _, validators in downloads)
        progress = Progress(
            f"downloading {location.url}",
            total,
            self._options.stats,
            threshold=self._options.progress_threshold,
        )
        try:
            with self._translated(location):
                futures = [
                    self._transfers.download(
                        location.netloc,
                        key,
                        str(target),
                        subscribers=[_Subscriber(validators["size"], progress, validators["etag"])],
                    )
                    for key, target, validators in downloads
                ]
                _wait_all(futures)
        finally:
            progress.close()
        self._options.stats.add(files_downloaded=len(downloads))

    def _head(self, location: Location) -> dict | None:
        """The object's HEAD response, or None when there is no such key."""
        try:
            with self._translated(location):
                return self._client.head_object(Bucket=location.netloc, Key=location.path)
        except _Missing:
            return None

    def _list(self, location: Location, prefix: str) -> dict[str, dict]:
        """``{relative key: validators}`` under ``prefix``, folder markers left out."""
        members: dict[str, dict] = {}
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            with self._translated(location):
                for page in paginator.paginate(Bucket=location.netloc, Prefix=prefix):
                    for item in page.get("Contents", []):
                        relative = item["Key"][len(prefix) :]
                        if relative and not relative.endswith("/"):
                            members[_safe_relative(relative, location)] = {
                                "etag": item["ETag"],
                                "size": item["Size"],
                            }
        except _Missing:
            raise ResourceError(self._missing_bucket_message(location)) from None
        return members

    def upload(self, source: Path, location: Location) -> None:
        """Upload ``source`` to ``location`` (a key ending in ``/`` gets the file's name)."""
        key = location.path + source.name if location.is_prefix else location.path
        target = Location(f"s3://{location.netloc}/{key}", "s3", location.netloc, key)
        size = source.stat().st_size
        progress = Progress(
            f"uploading {target.url}",
            size,
            self._options.stats,
            counter="bytes_uploaded",
            threshold=self._options.progress_threshold,
        )
        try:
            with self._translated(target, writing=True):
                future = self._transfers.upload(
                    str(source), target.netloc, key, subscribers=[_Subscriber(size, progress)]
                )
                future.result()
        except _Missing:
            raise ResourceError(self._missing_bucket_message(target)) from None
        finally:
            progress.close()
        self._options.stats.add(files_uploaded=1)

    # Whole objects as bytes, for the payload transmitter (plato_sedna.transport)

    def put_bytes(self, location: Location, data: bytes) -> None:
        """Write ``data`` as the object ``location`` names (one PUT)."""
        try:
            with self._translated(location, writing=True):
                self._client.put_object(Bucket=location.netloc, Key=location.path, Body=data)
        except _Missing:
            raise ResourceError(self._missing_bucket_message(location)) from None
        self._options.stats.add(bytes_uploaded=len(data), files_uploaded=1)

    def get_bytes(self, location: Location) -> bytes:
        """The content of the object ``location`` names; a missing object is a ResourceError."""
        try:
            with self._translated(location):
                data = self._client.get_object(Bucket=location.netloc, Key=location.path)["Body"].read()
        except _Missing:
            raise ResourceError(f"{self._where(location)}: no such object") from None
        self._options.stats.add(bytes_downloaded=len(data), files_downloaded=1)
        return data

    def delete(self, location: Location) -> None:
        """Delete the object ``location`` names (deleting a missing key is not an error)."""
        try:
            with self._translated(location, writing=True):
                self._client.delete_object(Bucket=location.netloc, Key=location.path)
        except _Missing:
            raise ResourceError(self._missing_bucket_message(location)) from None

    def keys_under(self, location: Location) -> list[str]:
        """The keys of the objects under the prefix ``location`` names (folder markers left out)."""
        prefix = location.path if location.is_prefix else location.path + "/"
        return [prefix + relative for relative in self._list(location, prefix)]

    def copy(self, source: Location, target: Location) -> None:
        """Copy the object ``source`` to ``target`` server-side (multipart for large objects)."""
        try:
            with self._translated(target, writing=True):
                self._transfers.copy(
                    {"Bucket": source.netloc, "Key": source.path}, target.netloc, target.path
                ).result()
        except _Missing:
            raise ResourceError(f"{self._where(source)}: no such object to copy") from None

    def close(self) -> None:
        self._transfers.shutdown()

    @contextmanager
    def _translated(self, location: Location, writing: bool = False) -> Iterator[None]:
        """Turn boto3's errors into ones that name the endpoint, bucket and key (never a secret)."""
        try:
            yield
        except ClientError as error:
            raise self._client_error(error, location, writing) from error
        except S3DownloadFailedError as error:
            if "did not match expected ETag" in str(error):
                raise _ObjectChanged() from None
            raise Unreachable(
                f"downloading from {self._where(location)} failed: {error}"
            ) from error
        except (BotoConnectionError, HTTPClientError, RetriesExceededError) as error:
            raise Unreachable(
                f"cannot reach {self._where(location)} ({type(error).__name__}): check "
                "S3_ENDPOINT_URL (scheme, host and port; Sedna builds it from the credential "
                "Secret's s3-endpoint and s3-usehttps annotations) and that this node can reach it"
            ) from error
        except NoCredentialsError:
            raise ResourceError(
                f"no S3 credentials for {self._where(location)}: set ACCESS_KEY_ID and "
                "SECRET_ACCESS_KEY (the Secret named by credentialName) or AWS's standard "
                "credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws)"
            ) from None

    def _client_error(self, error: ClientError, location: Location, writing: bool) -> Exception:
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "PreconditionFailed" or status == 412:
            return _ObjectChanged()
        if code == "NoSuchBucket":
            return ResourceError(self._missing_bucket_message(location))
        if code in _MISSING_CODES:
            return _Missing()
        if code in _DENIED_CODES or status == 403:
            action = "write" if writing else "read"
            return ResourceError(
                f"{self._where(location)} refused access ({code}): check ACCESS_KEY_ID and "
                f"SECRET_ACCESS_KEY (the Secret named by credentialName, or AWS's standard "
                f"credentials) and that they may {action} bucket {location.netloc}"
            )
        return ResourceError(
            f"{self._where(location)} failed with {code or status} after {MAX_ATTEMPTS} attempts; "
            "check the endpoint's health and try again"
        )

    def _where(self, location: Location) -> str:
        return (
            f"S3 endpoint {self.endpoint} (bucket {location.netloc!r}, key {location.path!r}, "
            f"url {location.url})"
        )

    def _missing_message(self, location: Location) -> str:
        under = posixpath.join(location.path.rstrip("/"), "") if location.path else ""
        what = (
            f"no object and no objects under {under!r}" if not location.is_prefix else "no objects"
        )
        return f"{self._where(location)}: {what}; check the key and the bucket"

    def _missing_bucket_message(self, location: Location) -> str:
        return (
            f"bucket {location.netloc!r} does not exist at S3 endpoint {self.endpoint} "
            f"(url {location.url}); check the bucket name and S3_ENDPOINT_URL"
        )


class _Missing(Exception):
    """A 404 for a key; the caller decides what it means."""


def _make_client(options: RemoteOptions):
    settings = options.s3
    endpoint = settings.endpoint_url if settings else None
    config = Config(
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        max_pool_connections=max(TRANSFER_CONFIG.max_request_concurrency, options.max_workers) + 2,
        s3={"addressing_style": "path"} if endpoint else None,
    )
    keys = {}
    if settings and settings.access_key_id and settings.secret_access_key:
        keys = {
            "aws_access_key_id": settings.access_key_id,
            "aws_secret_access_key": settings.secret_access_key,
        }
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint, config=config, **keys)


def _wait_all(futures: list) -> None:
    """Wait for every transfer; on the first failure cancel the rest, let them stop, re-raise."""
    try:
        for future in futures:
            future.result()
    except BaseException:
        for future in futures:
            future.cancel()
        for future in futures:
            try:
                future.result()
            except Exception as error:  # noqa: BLE001  (the first failure is the one re-raised)
                logger.debug("a cancelled transfer ended with %s", type(error).__name__)
        raise


def _safe_relative(relative: str, location: Location) -> str:
    """``relative`` normalised, refusing keys that would leave the prefix's folder."""
    parts = PurePosixPath(relative).parts
    if relative.startswith("/") or ".." in parts:
        raise ResourceError(
            f"{location.url} holds the key {relative!r}, which would be written outside "
            "its folder; rename or remove that object"
        )
    return "/".join(part for part in parts if part != ".")


def _make_parent(target: Path, location: Location) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ResourceError(
            f"{location.url} holds both an object and a folder named {target.parent.name!r}, "
            "which cannot both exist locally; rename one of them"
        ) from None


def _reuse(unchanged: bool, cached_dir: Path | None, relative: str, target: Path) -> bool:
    """Link an unchanged member from the old entry into the new; False when it must be fetched."""
    if not unchanged or cached_dir is None:
        return False
    old = cached_dir / relative
    if not old.is_file():
        return False
    try:
        target.hardlink_to(old)
    except OSError:
        return False
    return True
