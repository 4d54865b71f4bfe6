"""A download killed half-way leaves no cache entry, and the next fetch starts clean."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.http_server import HttpServer

from plato_sedna.storage import Storage, cache_key

pytest_plugins = ("support.storage_fixtures",)

MB = 1024 * 1024
FETCH_IN_A_CHILD = """
import sys
from pathlib import Path
from plato_sedna.storage import S3Settings, Storage
cache_dir, endpoint, url = sys.argv[1:4]
settings = S3Settings(endpoint, "testing-key-id", "testing-secret")
Storage(Path(cache_dir), settings).to_local_path(url)
"""


def partial_bytes(cache_dir: Path) -> int:
    """Bytes written so far under the cache's work-in-progress names."""
    total = 0
    for part in cache_dir.glob(".*.part"):
        for path in [part, *part.rglob("*")] if part.is_dir() else [part]:
            if path.is_file():
                total += path.stat().st_size
    return total


def kill_mid_download(cache_dir: Path, endpoint: str, url: str, after_bytes: int) -> None:
    """Fetch ``url`` in a child process and SIGKILL it once ``after_bytes`` have arrived."""
    child = subprocess.Popen(
        [sys.executable, "-c", FETCH_IN_A_CHILD, str(cache_dir), endpoint, url]
    )
    deadline = time.monotonic() + 30
    try:
        while child.poll() is None and time.monotonic() < deadline:
            if cache_dir.is_dir() and partial_bytes(cache_dir) >= after_bytes:
                os.kill(child.pid, signal.SIGKILL)
                break
            time.sleep(0.002)
    finally:
        if child.poll() is None and time.monotonic() >= deadline:
            child.kill()
        returncode = child.wait()
    assert returncode == -signal.SIGKILL, "the download ended before it could be interrupted"


def assert_no_entry(cache_dir: Path, url: str) -> None:
    key = cache_key(url)
    assert not (cache_dir / key).exists()
    assert not (cache_dir / f"{key}.json").exists()
    assert (cache_dir / f".{key}.staging.part").is_dir(), "the kill left no work in progress"


def assert_clean_fetch(storage: Storage, url: str, expected: bytes, cache_dir: Path) -> None:
    path = storage.to_local_path(url)
    assert path.read_bytes() == expected
    assert path.parent == cache_dir / cache_key(url)
    assert not list(cache_dir.glob(".*.part"))


def test_a_killed_s3_download_leaves_no_entry(
    s3_client, s3_bucket: str, s3_server, s3_settings, cache_dir: Path
) -> None:
    body = os.urandom(96 * MB)
    s3_client.put_object(Bucket=s3_bucket, Key="big/weights.bin", Body=body)
    url = f"s3://{s3_bucket}/big/weights.bin"

    kill_mid_download(cache_dir, s3_server.endpoint_url, url, after_bytes=1)

    assert_no_entry(cache_dir, url)
    with Storage(cache_dir, s3_settings) as storage:
        assert_clean_fetch(storage, url, body, cache_dir)
        assert storage.stats.bytes_downloaded == len(body)


def test_a_killed_http_download_leaves_no_entry(web_root: Path, cache_dir: Path) -> None:
    body = os.urandom(8 * MB)
    (web_root / "weights.bin").write_bytes(body)
    with HttpServer(web_root, bytes_per_s=8 * MB) as server:
        url = server.url("weights.bin")

        kill_mid_download(cache_dir, "http://unused", url, after_bytes=MB)

        assert_no_entry(cache_dir, url)
        server.bytes_per_s = None
        storage = Storage(cache_dir)
        assert_clean_fetch(storage, url, body, cache_dir)
        assert storage.stats.bytes_downloaded == len(body)
