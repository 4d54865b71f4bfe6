"""http(s):// through the standard library: conditional GETs revalidate, failures retry."""

from __future__ import annotations

import http.client
import logging
import socket
import urllib.error
import urllib.request
from pathlib import Path

from plato_sedna.errors import ResourceError
from plato_sedna.storage.cache import Manifest
from plato_sedna.storage.progress import Progress
from plato_sedna.storage.remote import RemoteOptions, Unreachable
from plato_sedna.storage.retry import with_retries
from plato_sedna.storage.urls import Location

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
TIMEOUT_S = 30
_RETRIED_STATUSES = {429, 500, 502, 503, 504}


class _Truncated(Exception):
    """The body ended before its Content-Length."""


class HttpRemote:
    """Files served over http(s); the cached copy is current when the server answers 304.

    A server that sends neither ETag nor Last-Modified cannot be revalidated: its files
    are downloaded on every fetch.
    """

    def __init__(self, options: RemoteOptions) -> None:
        self._options = options

    def refresh(
        self, location: Location, cached: Manifest | None, cached_dir: Path | None, staging: Path
    ) -> Manifest | None:
        """GET ``location`` with the cached ETag/Last-Modified; None when the server says 304."""
        known = (cached or {}).get("validators", {})
        request = urllib.request.Request(location.url, headers=_conditional_headers(known))
        target = staging / location.name
        try:
            validators = with_retries(
                lambda: self._get(request, known, target, location),
                _is_transient,
                f"GET {location.display}",
            )
        except urllib.error.HTTPError as error:
            raise _status_error(error.code, location) from None
        except _Truncated as error:
            raise Unreachable(
                f"the connection to {location.netloc} broke off while downloading "
                f"{location.display} ({error}); check the network and try again"
            ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            raise Unreachable(
                f"cannot reach {location.netloc} for {location.display} ({_reason(error)}); "
                "check the URL's host and port and that this node can reach it"
            ) from None
        if validators is None:
            return None
        return {"source": "object", "file_name": location.name, "validators": validators}

    def _get(
        self, request: urllib.request.Request, known: dict, target: Path, location: Location
    ) -> dict | None:
        try:
            response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as error:
            if error.code == 304:
                return None
            raise
        with response:
            validators = _validators(response)
            if known.get("etag") and validators.get("etag") == known["etag"]:
                return None  # the server ignored If-None-Match but the entity is the same
            self._save(response, target, validators.get("size"), location)
        return validators

    def _save(self, response, target: Path, size: int | None, location: Location) -> None:
        progress = Progress(
            f"downloading {location.display}",
            size or 0,
            self._options.stats,
            threshold=self._options.progress_threshold,
        )
        received = 0
        try:
            with open(target, "wb") as file:
                while chunk := response.read(CHUNK_BYTES):
                    file.write(chunk)
                    received += len(chunk)
                    progress(len(chunk))
        finally:
            progress.close()
        if size is not None and received != size:
            raise _Truncated(f"received {received} of {size} bytes")
        self._options.stats.add(files_downloaded=1)

    def upload(self, source: Path, location: Location) -> None:
        raise ResourceError(
            f"cannot publish to {location.display}: publishing supports local paths and s3:// URLs"
        )


def _conditional_headers(known: dict) -> dict[str, str]:
    headers = {}
    if known.get("etag"):
        headers["If-None-Match"] = known["etag"]
    if known.get("last_modified"):
        headers["If-Modified-Since"] = known["last_modified"]
    return headers


def _validators(response) -> dict:
    length = response.headers.get("Content-Length")
    return {
        "etag": response.headers.get("ETag"),
        "last_modified": response.headers.get("Last-Modified"),
        "size": int(length) if length and length.isdigit() else None,
    }


def _is_transient(error: Exception) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code in _RETRIED_STATUSES
    return isinstance(
        error,
        (
            urllib.error.URLError,
            http.client.HTTPException,
            ConnectionError,
            socket.timeout,
            _Truncated,
        ),
    )


def _status_error(status: int, location: Location) -> ResourceError:
    if status == 404:
        return ResourceError(f"{location.display} was not found (HTTP 404); check the URL")
    if status in (401, 403):
        return ResourceError(
            f"{location.netloc} refused access to {location.display} (HTTP {status}); "
            "check that the URL is readable without credentials or carries its token"
        )
    return ResourceError(
        f"{location.display} failed with HTTP {status}; check the server and try again"
    )


def _reason(error: Exception) -> str:
    reason = getattr(error, "reason", None) or error
    return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
