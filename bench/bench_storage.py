"""Throughput of an S3 fetch through the storage layer vs plain boto3; the cost of a cached fetch.

Usage::

    .venv/bin/python bench/bench_storage.py            # a 200 MB object, 3 runs each
    .venv/bin/python bench/bench_storage.py --mb 50 --runs 1

Starts moto's S3 server on loopback in a separate process (``--in-process`` runs it in
a thread of this one), uploads one random object of ``--mb`` MB, then alternates a
plain ``boto3`` ``download_file`` and ``Storage.to_local_path`` into a fresh cache, and
prints each run's time and throughput, the median throughput ratio boto3/storage
(target <= 1.2), and a second, cached fetch's time and bytes transferred (target: 0).
Prints numbers, never asserts them. Needs ``boto3`` and ``moto[server]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.s3_server import (
    ANY_ACCESS_KEY_ID,
    ANY_SECRET_ACCESS_KEY,
    REGION,
    start_s3_server,
)

from plato_sedna.storage import S3Settings, Storage
from plato_sedna.storage.cache import remove_tree

RATIO_TARGET = 1.2
BUCKET = "bench"
KEY = "blob.bin"
WARM_UP_KEY = "warm-up.txt"
MB = 1024 * 1024


def start_server(in_process: bool) -> tuple[str, object]:
    """The endpoint of a fresh moto server and a handle to stop it."""
    if in_process:
        server = start_s3_server()
        return server.endpoint_url, server
    process = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "support" / "s3_server.py")],
        stdout=subprocess.PIPE,
        text=True,
    )
    return process.stdout.readline().strip(), process


def stop_server(handle: object) -> None:
    if isinstance(handle, subprocess.Popen):
        handle.terminate()
        handle.wait(timeout=10)
    else:
        handle.stop()


def boto3_client(endpoint: str):
    import boto3

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ANY_ACCESS_KEY_ID,
        aws_secret_access_key=ANY_SECRET_ACCESS_KEY,
    )


def upload_object(client, size_mb: int, work_dir: Path) -> None:
    source = work_dir / "source.bin"
    with open(source, "wb") as file:
        file.writelines(os.urandom(MB) for _ in range(size_mb))
    client.create_bucket(Bucket=BUCKET)
    client.upload_file(str(source), BUCKET, KEY)
    source.unlink()


def time_boto3(client, work_dir: Path) -> float:
    target = work_dir / "boto3.bin"
    started = time.perf_counter()
    client.download_file(BUCKET, KEY, str(target))
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def time_storage(storage: Storage) -> float:
    """One fetch into an emptied cache (the storage and its client stay warm)."""
    for entry in storage.cache.root.iterdir():
        remove_tree(entry)
    started = time.perf_counter()
    storage.to_local_path(f"s3://{BUCKET}/{KEY}")
    return time.perf_counter() - started


def warm_up(client, storage: Storage, work_dir: Path) -> None:
    """Create both clients' connections and load their models before anything is timed."""
    client.put_object(Bucket=BUCKET, Key=WARM_UP_KEY, Body=b"warm")
    client.download_file(BUCKET, WARM_UP_KEY, str(work_dir / WARM_UP_KEY))
    storage.to_local_path(f"s3://{BUCKET}/{WARM_UP_KEY}")


def report(label: str, seconds: float, size_mb: int) -> str:
    return f"{label} {seconds:.3f} s ({size_mb / seconds:.1f} MB/s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="object size in MB (default 200)")
    parser.add_argument("--runs", type=int, default=3, help="downloads of each kind (default 3)")
    parser.add_argument(
        "--in-process", action="store_true", help="run moto in a thread of this process"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show the storage layer's progress logs"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)

    endpoint, server = start_server(args.in_process)
    work_dir = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    try:
        client = boto3_client(endpoint)
        settings = S3Settings(endpoint, ANY_ACCESS_KEY_ID, ANY_SECRET_ACCESS_KEY)
        upload_object(client, args.mb, work_dir)
        where = "in this process" if args.in_process else "in a separate process"
        print(f"object: {args.mb} MB at s3://{BUCKET}/{KEY} on moto at {endpoint} ({where})")
        cache_dir = work_dir / "cache"
        storage = Storage(cache_dir, settings)
        warm_up(client, storage, work_dir)
        plain, layered = [], []
        for run in range(args.runs):
            order = ("boto3", "storage") if run % 2 == 0 else ("storage", "boto3")
            for kind in order:
                if kind == "boto3":
                    plain.append(time_boto3(client, work_dir))
                else:
                    layered.append(time_storage(storage))
            print(
                f"run {run + 1}: {report('boto3 download_file', plain[-1], args.mb)} | "
                f"{report('storage.to_local_path', layered[-1], args.mb)}"
            )
        plain_s, layered_s = statistics.median(plain), statistics.median(layered)
        print(
            f"median: {report('boto3 download_file', plain_s, args.mb)} | "
            f"{report('storage.to_local_path', layered_s, args.mb)}"
        )
        print(
            f"throughput ratio boto3/storage: {layered_s / plain_s:.3f} (target <= {RATIO_TARGET})"
        )
        before = storage.stats.bytes_downloaded
        started = time.perf_counter()
        storage.to_local_path(f"s3://{BUCKET}/{KEY}")
        cached_s = time.perf_counter() - started
        print(
            f"cached fetch, same process: {cached_s * 1000:.1f} ms, "
            f"bytes transferred: {storage.stats.bytes_downloaded - before} (target: 0)"
        )
        storage.close()
        with Storage(cache_dir, settings) as next_run:
            started = time.perf_counter()
            next_run.to_local_path(f"s3://{BUCKET}/{KEY}")
            cached_s = time.perf_counter() - started
            print(
                f"cached fetch, new storage (a job's second run, client start-up included): "
                f"{cached_s * 1000:.1f} ms, bytes transferred: {next_run.stats.bytes_downloaded} "
                "(target: 0)"
            )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
        stop_server(server)


if __name__ == "__main__":
    main()
