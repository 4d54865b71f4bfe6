"""URL parsing and the scheme table: which backend serves a URL, imported on first use."""

from __future__ import annotations

import importlib
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import unquote, urlsplit, urlunsplit

from plato_sedna.errors import ResourceError

LOCAL_SCHEME = "file"
DEFAULT_FILE_NAME = "download"
_SCHEME_PATTERN = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class Backend:
    """Where a remote scheme's backend class lives, and what to install when it cannot load."""

    target: str
    install_hint: str | None = None


# Remote backends import their client library (boto3) only when a URL needs them.
REMOTE_SCHEMES: Mapping[str, Backend] = MappingProxyType(
    {
        "s3": Backend(
            "plato_sedna.storage.s3:S3Remote",
            "s3:// URLs need boto3: install it with `pip install boto3`",
        ),
        "http": Backend("plato_sedna.storage.http:HttpRemote"),
        "https": Backend("plato_sedna.storage.http:HttpRemote"),
    }
)
SUPPORTED_SCHEMES: tuple[str, ...] = (LOCAL_SCHEME, *REMOTE_SCHEMES)


@dataclass(frozen=True)
class Location:
    """A parsed URL.

    Attributes
    ----------
    url : str
        The URL as given.
    scheme : str
        ``file`` for plain paths and ``file://`` URLs, else the URL's scheme (lowercase).
    netloc : str
        The bucket (s3) or host (http); empty for local paths.
    path : str
        The local path (file), the object key without a leading slash (s3), or the
        URL's path (http).
    """

    url: str
    scheme: str
    netloc: str
    path: str

    @property
    def is_local(self) -> bool:
        return self.scheme == LOCAL_SCHEME

    @property
    def is_prefix(self) -> bool:
        """Whether the URL names a folder (an s3 bucket root or a key ending in ``/``)."""
        return self.path == "" or self.path.endswith("/")

    @property
    def name(self) -> str:
        """The last path component, as the file will be called locally."""
        return posixpath.basename(self.path.rstrip("/")) or DEFAULT_FILE_NAME

    @property
    def display(self) -> str:
        """The URL without user info and query (they may hold tokens), for messages."""
        return display_url(self.url)


def split_scheme(url: str) -> tuple[str | None, str]:
    """``(scheme, rest)``; ``(None, url)`` for a plain path, including ``C:\\`` style ones."""
    match = _SCHEME_PATTERN.match(url)
    if match is None or len(match.group(1)) == 1:
        return None, url
    return match.group(1).lower(), url[match.end() :]


def is_remote(url: str) -> bool:
    """Whether ``url`` has a scheme other than ``file`` (and so is fetched, not opened)."""
    scheme, _ = split_scheme(url)
    return scheme is not None and scheme != LOCAL_SCHEME


def parse_url(url: str) -> Location:
    """Parse ``url`` into a :class:`Location`.

    Raises
    ------
    ResourceError
        For an unsupported scheme (the message lists the supported ones) or an s3 URL
        without a bucket.
    """
    scheme, rest = split_scheme(url)
    if scheme is None:
        return Location(url, LOCAL_SCHEME, "", url)
    if scheme == LOCAL_SCHEME:
        parts = urlsplit(url)
        return Location(url, LOCAL_SCHEME, "", unquote(parts.path) or rest)
    if scheme not in REMOTE_SCHEMES:
        raise ResourceError(
            f"unsupported URL scheme {scheme!r} in {display_url(url)}; supported are "
            f"{', '.join(SUPPORTED_SCHEMES)} (or a plain local path)"
        )
    if scheme == "s3":
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise ResourceError(f"{url} names no bucket; write s3://BUCKET/KEY")
        return Location(url, scheme, bucket, key)
    parts = urlsplit(url)
    return Location(url, scheme, parts.netloc, unquote(parts.path))


def display_url(url: str) -> str:
    """``url`` with any ``user:password@`` and ``?query`` replaced, safe to log."""
    scheme, _ = split_scheme(url)
    if scheme not in ("http", "https"):
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    query = "..." if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def load_backend(scheme: str) -> type:
    """The backend class for a remote ``scheme``, importing its module now.

    Raises
    ------
    ImportError
        With the install hint, when the backend's client library is missing.
    """
    backend = REMOTE_SCHEMES[scheme]
    module_name, _, class_name = backend.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        if backend.install_hint is None:
            raise
        raise ImportError(backend.install_hint) from error
    return getattr(module, class_name)
