"""A stand-in for Sedna's storage initializer, the init container the GM adds to every FL pod.

What it does, after ``pkg/globalmanager/runtime/storage_initializer_injector.go``
(``MountURL.parseDownloadPath``, ``PrepareInitContainer``) and
``scripts/storage-initializer/download.py`` (``download_s3``, ``_download_s3``):

- each ``s3://`` url of the pod (the Model's, the pretrained Model's, the Dataset's) is a
  pair ``url dst``, ``dst`` being the folder of ``/downloads/<bucket>/<key>``;
- it lists the objects whose key starts with the url's key (recursively) and writes each
  under ``dst`` by its key less the key's parent folder;
- none listed: ``RuntimeError("Failed to fetch files.The path ... does not exist.")``, and
  the pod never starts its worker.

Archives are not unpacked here (the tests' urls name none).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from pathlib import Path


class InitializerFailed(RuntimeError):
    """The init container exited non-zero: the pod's worker never starts."""


def container_path(downloads: Path, url: str) -> Path:
    """The env value Sedna gives the worker for ``url``: ``/downloads/<host><path>``."""
    rest = url.split("://", 1)[1]
    return downloads / rest.strip("/")


def download(client, url: str, downloads: Path) -> int:
    """Download one ``s3://`` url as the initializer does; the number of files written."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    out_dir = container_path(downloads, url).parent  # filepath.Split(ContainerPath)
    root = posixpath.split(posixpath.normpath(key))[0] if key else ""
    count = 0
    for page in client.get_paginator("list_objects").paginate(Bucket=bucket, Prefix=key):
        for item in page.get("Contents", []):
            name = item["Key"]
            if name.endswith("/"):
                continue
            relative = name[len(root):].strip("/") or posixpath.basename(name)
            target = out_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, name, str(target))
            count += 1
    if count == 0:
        raise InitializerFailed(f"Failed to fetch files.The path {url} does not exist.")
    return count


def initialize_pod(client, urls: Iterable[str], downloads: Path) -> dict[str, Path]:
    """Run the init container for one pod: every remote url downloaded, or InitializerFailed.

    Returns each url's container path (what the worker gets in its env).
    """
    paths = {}
    for url in urls:
        if url and url.startswith("s3://"):
            download(client, url, downloads)
            paths[url] = container_path(downloads, url)
    return paths


def job_pods(objects: list[dict]) -> dict[str, list[str]]:
    """The remote urls each pod of a rendered job downloads, by pod: the GM's createAggPod/createTrainPod."""
    by_kind = {(obj.get("kind"), obj.get("metadata", {}).get("name")): obj for obj in objects}
    job = next(obj for obj in objects if obj.get("kind") == "FederatedLearningJob")
    spec = job["spec"]

    def url(kind: str, name: str | None) -> str | None:
        found = by_kind.get((kind, name)) if name else None
        return found["spec"]["url"] if found else None

    model = url("Model", spec["aggregationWorker"]["model"]["name"])
    pretrained = url("Model", (spec.get("pretrainedModel") or {}).get("name"))
    pods = {"aggregator": [u for u in (model, pretrained) if u]}
    for index, worker in enumerate(spec["trainingWorkers"]):
        dataset = url("Dataset", worker["dataset"]["name"])
        pods[f"trainer-{index}"] = [u for u in (model, pretrained, dataset) if u]
    return pods
