"""Pytest fixtures for storage tests: a loopback S3 server, a bucket, a Storage, an HTTP server.

Use them with ``pytest_plugins = ("support.storage_fixtures",)`` in a test module.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.http_server import HttpServer
from support.s3_server import ANY_ACCESS_KEY_ID, ANY_SECRET_ACCESS_KEY, S3Server


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture
def s3_client(s3_server: S3Server):
    """A boto3 client of the loopback server, for arranging objects."""
    return s3_server.client()


@pytest.fixture
def s3_bucket(s3_client) -> str:
    """A new, empty bucket."""
    name = f"bkt-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_settings(s3_server: S3Server):
    from plato_sedna.storage import S3Settings

    return S3Settings(s3_server.endpoint_url, ANY_ACCESS_KEY_ID, ANY_SECRET_ACCESS_KEY)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def storage(cache_dir: Path, s3_settings):
    from plato_sedna.storage import Storage

    with Storage(cache_dir, s3_settings, progress_threshold=1024 * 1024) as opened:
        yield opened


@pytest.fixture
def web_root(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    return root


@pytest.fixture
def http_server(web_root: Path) -> Iterator[HttpServer]:
    with HttpServer(web_root) as server:
        yield server
