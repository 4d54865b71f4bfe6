"""A Dataset whose url is a remote index: in a cluster Sedna's storage initializer downloads
the index alone into ``/downloads/<bucket>/<key>`` and sets TRAIN_DATASET_URL to that copy.
Its relative entries are then fetched from beside the Dataset's own url."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import QUICKSTART
from support.build_model import run_in_fresh_process
from support.s3_server import ANY_ACCESS_KEY_ID, ANY_SECRET_ACCESS_KEY
from test_datasource_formats import CLASSES, DATASET, txt_dataset, upload
from test_datasource_resource import BUILD_DATASOURCE, CONFIG
from plato_sedna.datasources.datasets import ImageDataset
from plato_sedna.datasources.reader import read_dataset
from plato_sedna.datasources.settings import resolve_settings
from plato_sedna.errors import ResourceError
from plato_sedna.local.manifests import dataset_from_object

pytest_plugins = ("support.storage_fixtures",)


def dataset_at(url: str):
    name, namespace = DATASET.removeprefix("Dataset ").split("/")[::-1]
    document = {
        "apiVersion": "sedna.io/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"url": url, "format": "txt", "nodeName": "edge1"},
    }
    return dataset_from_object(document, "dataset.yaml")


def initializer_copy(index: Path, downloads: Path, bucket: str, key: str) -> Path:
    """What Sedna's storage initializer leaves: the index alone at /downloads/<bucket>/<key>."""
    copy = downloads / bucket / key
    copy.parent.mkdir(parents=True)
    shutil.copy(index, copy)
    return copy


def test_entries_of_a_downloaded_s3_index_come_from_the_bucket(
    tmp_path: Path, storage, s3_client, s3_bucket, caplog
) -> None:
    index = txt_dataset(tmp_path / "data")
    url = upload(s3_client, s3_bucket, tmp_path / "data", "edge1") + "train.txt"
    copy = initializer_copy(index, tmp_path / "downloads", s3_bucket, "edge1/train.txt")
    settings = resolve_settings({}, {"train_url": str(copy)}, dataset_at(url))
    assert settings.train_origin_url == url

    with caplog.at_level(logging.INFO, logger="plato_sedna.datasources"):
        parts = read_dataset(settings, storage)

    assert parts.train.origin.root == f"s3://{s3_bucket}/edge1/"
    assert parts.train.origin.file == str(copy) and len(parts.train) == 6
    assert f"relative entries are fetched from s3://{s3_bucket}/edge1/" in caplog.text
    dataset = ImageDataset(parts.train, storage=storage)
    image, target = dataset[4]
    assert tuple(image.shape) == (3, 8, 8) and dataset.classes[target] == CLASSES[1]
    assert storage.stats.files_downloaded == 1  # the image, fetched on first use


def test_entries_of_a_downloaded_http_index_come_from_the_web(
    tmp_path: Path, storage, web_root: Path, http_server
) -> None:
    index = txt_dataset(web_root / "edge1")
    url = http_server.url("edge1/train.txt")
    copy = initializer_copy(index, tmp_path / "downloads", "127.0.0.1", "edge1/train.txt")

    parts = read_dataset(resolve_settings({}, {"train_url": str(copy)}, dataset_at(url)), storage)

    assert parts.train.origin.root == http_server.url("edge1/")
    assert tuple(ImageDataset(parts.train, storage=storage)[0][0].shape) == (3, 8, 8)


def test_a_local_copy_with_its_images_stays_local(tmp_path: Path, storage) -> None:
    index = txt_dataset(tmp_path / "copy")  # images and all, e.g. a hostPath the user synced

    parts = read_dataset(
        resolve_settings({}, {"train_url": str(index)}, dataset_at("s3://unreachable/edge1/train.txt")),
        storage,
    )

    assert parts.train.origin.root == str(tmp_path / "copy")
    assert ImageDataset(parts.train, storage=storage)[0][1] == 0
    assert storage.stats.files_downloaded == 0


def test_a_missing_remote_entry_names_the_bucket_and_the_line(
    tmp_path: Path, storage, s3_client, s3_bucket
) -> None:
    index = txt_dataset(tmp_path / "data")
    url = upload(s3_client, s3_bucket, tmp_path / "data", "edge1") + "train.txt"
    s3_client.delete_object(Bucket=s3_bucket, Key="edge1/images/cat/1.png")
    copy = initializer_copy(index, tmp_path / "downloads", s3_bucket, "edge1/train.txt")
    parts = read_dataset(resolve_settings({}, {"train_url": str(copy)}, dataset_at(url)), storage)

    with pytest.raises(ResourceError, match=rf"{copy}, line 2: .*s3://{s3_bucket}/edge1/images/cat/1.png"):
        ImageDataset(parts.train, storage=storage)[1]


def test_a_trainer_with_the_initializers_copy_reads_the_bucket(
    tmp_path: Path, s3_server, s3_client, s3_bucket
) -> None:
    """The Dataset comes from the manifests (resources.pod_dataset), the copy from the pod's env."""
    index = txt_dataset(tmp_path / "data")
    url = upload(s3_client, s3_bucket, tmp_path / "data", "edge1") + "train.txt"
    copy = initializer_copy(index, tmp_path / "downloads", s3_bucket, "edge1/train.txt")
    documents = list(yaml.safe_load_all((QUICKSTART / "job.yaml").read_text()))
    edge1 = next(d for d in documents if d["metadata"]["name"] == "digits-edge1")
    edge1["spec"]["url"] = url
    edge1["metadata"]["annotations"] = {"plato.sedna.io/image-size": "4"}
    job = tmp_path / "jobs" / "job.yaml"
    job.parent.mkdir()
    job.write_text(yaml.safe_dump_all(documents))
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(manifests=job) + f'train_url = "{copy}"\n')
    env = dict(
        os.environ,
        S3_ENDPOINT_URL=s3_server.endpoint_url,
        ACCESS_KEY_ID=ANY_ACCESS_KEY_ID,
        SECRET_ACCESS_KEY=ANY_SECRET_ACCESS_KEY,
    )

    result = run_in_fresh_process(BUILD_DATASOURCE, config, tmp_path, timeout=300, env=env)

    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert sum(report["sizes"]) == 6 and report["shape"] == [3, 4, 4]
    assert f"s3://{s3_bucket}/edge1/" in result.stderr + result.stdout
