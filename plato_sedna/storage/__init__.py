"""The storage layer: URL in (local, file://, s3://, http(s)://), local path out; publishing."""

from plato_sedna.storage.archives import is_archive
from plato_sedna.storage.cache import cache_key
from plato_sedna.storage.progress import TransferStats
from plato_sedna.storage.remote import Unreachable
from plato_sedna.storage.settings import S3Settings
from plato_sedna.storage.storage import Storage
from plato_sedna.storage.urls import (
    SUPPORTED_SCHEMES,
    Location,
    display_url,
    is_remote,
    parse_url,
)

__all__ = [
    "SUPPORTED_SCHEMES",
    "Location",
    "S3Settings",
    "Storage",
    "TransferStats",
    "Unreachable",
    "cache_key",
    "display_url",
    "is_archive",
    "is_remote",
    "parse_url",
]
