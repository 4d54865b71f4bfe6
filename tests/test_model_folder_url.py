"""A Model url that names a folder holds the model and everything beside it, never its parent.

Sedna's README does ``mkdir /model`` and sets ``url: "/model"``; on a node the url's
parent is the hostPath the GM mounts, so nothing may land there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.model_helpers import build, randomized

from plato_sedna.models import publish
from plato_sedna.models.publish import ModelPublisher, PublishSettings
from plato_sedna.servers import resume

pytest_plugins = ("support.storage_fixtures",)

METRICS = {"rounds": 1, "accuracy": 0.5}


def _publish(url: str, storage, tmp_path: Path, fmt: str = "pth", rounds: int = 2) -> str:
    publisher = ModelPublisher(
        url, storage, tmp_path / "staged", fmt, PublishSettings(keep_versions=5), input_shape=(1, 28, 28)
    )
    model = randomized(build(architecture="lenet5", num_classes=10))
    published = None
    for round_number in range(1, rounds + 1):
        published = publisher.publish(model, {**METRICS, "rounds": round_number}, round_number)
    return published


@pytest.mark.parametrize(
    ("url", "is_folder"),
    [
        ("/model/", True),
        ("/nowhere/model", True),  # no suffix: a folder, existing or not
        ("s3://bucket/models/digits", True),
        ("s3://bucket/models/", True),
        ("s3://bucket", True),
        ("/models/net.pth", False),
        ("s3://bucket/models/net.pth", False),
        ("file:///models/net.pb", False),
    ],
)
def test_which_urls_name_a_folder(url: str, is_folder: bool) -> None:
    assert publish.is_folder_url(url) is is_folder


def test_an_existing_folder_and_an_existing_file_are_what_they_are(tmp_path: Path) -> None:
    (tmp_path / "v1.2").mkdir()
    (tmp_path / "weights").write_bytes(b"x")
    assert publish.is_folder_url(str(tmp_path / "v1.2"))
    assert not publish.is_folder_url(str(tmp_path / "weights"))
    assert publish.model_folder(str(tmp_path / "weights")) == str(tmp_path)


@pytest.mark.parametrize("exists", [True, False])
def test_a_folder_url_holds_model_metrics_latest_and_rounds(exists: bool, tmp_path: Path, storage) -> None:
    host = tmp_path / "host"  # the hostPath Sedna mounts: the url's parent
    folder = host / "model"
    host.mkdir()
    if exists:
        folder.mkdir()

    published = _publish(str(folder), storage, tmp_path, fmt="pb")

    assert published == str(folder / "model.pb")
    assert folder.is_dir()
    names = sorted(path.name for path in folder.iterdir())
    assert names == ["latest", "metrics.json", "model.pb", "round-0001", "round-0002"]
    assert (folder / "round-0002" / "model.pb").is_file()
    assert sorted(path.name for path in host.iterdir()) == ["model"]  # nothing in the parent
    assert publish.model_path(str(folder), "pb") == folder / "model.pb"
    assert publish.model_path(str(folder)) == folder / "model.pb"  # found there without the format


def test_the_resume_mirror_goes_inside_a_folder_url(tmp_path: Path) -> None:
    assert resume.remote_folder("/model", "digits") == "/model/.plato-sedna-resume/digits"
    assert resume.remote_folder("/model/", "digits") == "/model/.plato-sedna-resume/digits"
    assert resume.remote_folder("s3://b/models/digits", "j") == "s3://b/models/digits/.plato-sedna-resume/j"
    assert resume.remote_folder("/models/net.pth", "j") == "/models/.plato-sedna-resume/j"


def test_the_plain_publish_function_writes_inside_a_new_folder(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    written = publish.publish(str(folder), {}, {"rounds": 1})
    assert written == folder / "model.pth"
    assert sorted(path.name for path in folder.iterdir()) == ["metrics.json", "model.pth"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize("url_tail", ["models/digits", "models/digits/"])
def test_an_s3_folder_url_holds_everything_under_its_prefix(url_tail: str, tmp_path: Path, storage, s3_bucket: str, s3_client) -> None:
    url = f"s3://{s3_bucket}/{url_tail}"

    published = _publish(url, storage, tmp_path)

    assert published == f"s3://{s3_bucket}/models/digits/model.pth"
    keys = sorted(item["Key"] for item in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert keys == [
        "models/digits/latest",
        "models/digits/metrics.json",
        "models/digits/model.pth",
        "models/digits/round-0001/metrics.json",
        "models/digits/round-0001/model.pth",
        "models/digits/round-0002/metrics.json",
        "models/digits/round-0002/model.pth",
    ]
