"""Where sednaDataResource's settings come from: config, env, Dataset resource, annotations, extra spec."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from plato_sedna.datasources.settings import resolve_settings
from plato_sedna.errors import ResourceError
from plato_sedna.local.manifests import DatasetSpec, dataset_from_object


def dataset(
    annotations=None, url: str = "data/edge1.txt", fmt: str = "txt", **extra
) -> DatasetSpec:
    return DatasetSpec(
        "edge1",
        "ml",
        url,
        fmt,
        "node1",
        MappingProxyType(annotations or {}),
        MappingProxyType(extra),
    )


def test_config_beats_env_beats_the_resource() -> None:
    pod = {"train_url": "/env/train.txt", "test_url": None}
    resource = dataset({"plato.sedna.io/test-url": "s3://b/test.txt"})

    settings = resolve_settings({"train_url": "/config/train.txt"}, pod, resource)
    assert (
        settings.train_url == "/config/train.txt"
        and settings.source["train_url"] == "config data.train_url"
    )
    assert settings.test_url == "s3://b/test.txt"
    assert (
        settings.source["test_url"]
        == "annotation plato.sedna.io/test-url of Dataset ml/edge1"
    )

    settings = resolve_settings({}, pod, resource)
    assert (
        settings.train_url == "/env/train.txt"
        and settings.source["train_url"] == "env TRAIN_DATASET_URL"
    )
    assert settings.dataset == "Dataset ml/edge1"

    settings = resolve_settings({}, {}, resource, manifests_dir="/jobs")
    assert settings.train_url == "/jobs/data/edge1.txt"
    assert settings.source["train_url"] == "Dataset ml/edge1 spec.url"


def test_annotations_beat_the_extra_spec_fields_and_the_format_refines_spec_format() -> (
    None
):
    resource = dataset(
        {
            "plato.sedna.io/format": "folders",
            "plato.sedna.io/num-classes": "3",
            "plato.sedna.io/classes": '["cat", "dog", "bird"]',
            "plato.sedna.io/image-size": "32",
            "other.io/owner": "team-a",
        },
        num_classes=10,
        image_size=64,
        data_params="coco.yaml",
        download_url="http://host/data.zip",
    )
    settings = resolve_settings({}, {}, resource)

    assert (
        settings.format == "folders"
        and settings.num_classes == 3
        and settings.image_size == 32
    )
    assert settings.classes == ("cat", "dog", "bird")
    assert (
        settings.data_yaml == "coco.yaml"
        and settings.source["data_yaml"] == "Dataset ml/edge1 spec.data_params"
    )
    assert settings.download_url == "http://host/data.zip"
    assert resolve_settings({"format": "txt"}, {}, resource).format == "txt"
    assert resolve_settings({}, {}, dataset()).format == "txt"


def test_extra_spec_paths_resolve_beside_the_dataset_url() -> None:
    resource = dataset(
        url="s3://bucket/coco/", train_path="images/train/", test_path="/abs/val"
    )

    settings = resolve_settings({}, {}, resource)
    assert settings.train_url == "s3://bucket/coco/"  # spec.url comes first
    assert settings.test_url == "/abs/val"
    resource = dataset(url="/data/coco/index.txt", test_path="val.txt")
    assert resolve_settings({}, {}, resource).test_url == "/data/coco/val.txt"


def test_defaults_and_plain_values() -> None:
    settings = resolve_settings(
        {
            "test_split": 0.3,
            "random_seed": 7,
            "skip_missing": "true",
            "classes": "a, b",
        },
        {},
    )

    assert (settings.test_split, settings.random_seed, settings.skip_missing) == (
        0.3,
        7,
        True,
    )
    assert settings.classes == ("a", "b") and settings.dataset == "dataset"
    defaults = resolve_settings({}, {"train_url": "http://u:p@host/x.txt?sig=1"})
    assert (defaults.test_split, defaults.random_seed, defaults.skip_missing) == (
        0.2,
        1,
        False,
    )
    assert defaults.dataset == "dataset http://host/x.txt?..."  # never the credentials


@pytest.mark.parametrize(
    ("config", "annotations", "message"),
    [
        (
            {},
            {"plato.sedna.io/num-classes": "ten"},
            r"annotation plato.sedna.io/num-classes of Dataset ml/edge1 = 'ten' must be an integer >= 1",
        ),
        (
            {"test_split": 1.5},
            {},
            r"config data.test_split = 1.5 must be a number between 0 and 1",
        ),
        (
            {"skip_missing": "maybe"},
            {},
            r"config data.skip_missing = 'maybe' must be true or false",
        ),
        (
            {},
            {"plato.sedna.io/classes": "[cat"},
            r"plato.sedna.io/classes of Dataset ml/edge1 = '\[cat' is not a JSON list",
        ),
        ({}, {"plato.sedna.io/classes": "a,a"}, r"names a class twice"),
    ],
)
def test_bad_values_name_where_they_were_set(config, annotations, message) -> None:
    with pytest.raises(ResourceError, match=message):
        resolve_settings(config, {}, dataset(annotations))


def test_unknown_plato_annotations_are_named_in_a_warning(caplog) -> None:
    resolve_settings({}, {}, dataset({"plato.sedna.io/formats": "txt"}))

    assert (
        "Dataset ml/edge1: ignoring annotation(s) plato.sedna.io/formats; sednaDataResource reads plato.sedna.io/format"
        in caplog.text
    )


def test_manifests_keep_the_extra_spec_fields_and_annotations() -> None:
    document = {
        "apiVersion": "sedna.io/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "coco", "annotations": {"plato.sedna.io/format": "yolo"}},
        "spec": {
            "url": "s3://b/coco/",
            "format": "txt",
            "nodeName": "n",
            "num_classes": 80,
            "data_params": "coco.yaml",
            "other": 1,
        },
    }
    spec = dataset_from_object(document, "test")

    assert dict(spec.extra) == {"num_classes": 80, "data_params": "coco.yaml"}
    settings = resolve_settings({}, {}, spec)
    assert (settings.format, settings.num_classes, settings.data_yaml) == (
        "yolo",
        80,
        "coco.yaml",
    )
    assert settings.dataset == "Dataset default/coco"
