"""sednaModelResource resolves and builds each kind of architecture offline."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.model_helpers import build, settings

from plato_sedna.errors import ConfigError, ResourceError
from plato_sedna.models.settings import resolve_settings

pytest_plugins = ("support.model_fixtures",)


@pytest.mark.parametrize(
    ("architecture", "class_name", "outputs"),
    [("lenet5", "Model", 10), ("resnet_18", "Model", 10), ("vgg_16", "Model", 10)],
)
def test_plato_registry_names(architecture: str, class_name: str, outputs: int) -> None:
    import torch

    model = build(architecture=architecture, num_classes=outputs).eval()
    shape = (1, 1, 28, 28) if architecture == "lenet5" else (1, 3, 32, 32)

    assert type(model).__name__ == class_name
    assert model(torch.zeros(shape)).shape == (1, outputs)


def test_torchvision_name_with_num_classes() -> None:
    import torch

    model = build(architecture="mobilenet_v3_small", num_classes=7).eval()

    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 7)


def test_hugging_face_folder_builds_with_its_weights(bert_folder: Path) -> None:
    import torch
    from transformers import BertForSequenceClassification

    model = build(architecture=str(bert_folder))  # task inferred from the folder's config

    assert isinstance(model, BertForSequenceClassification)
    saved = BertForSequenceClassification.from_pretrained(bert_folder)
    assert torch.equal(model.classifier.weight, saved.classifier.weight)


def test_hugging_face_task_and_num_classes_from_settings(bert_folder: Path) -> None:
    from transformers import BertForTokenClassification

    model = build(
        architecture=str(bert_folder), task="token-classification", num_classes=5, pretrained=False
    )

    assert isinstance(model, BertForTokenClassification)
    assert model.classifier.out_features == 5


def test_hugging_face_id_without_network_is_a_clear_error() -> None:
    with pytest.raises(
        ResourceError, match="cannot read the Hugging Face config of 'org/no-such-model'"
    ):
        build(architecture="org/no-such-model")


def test_ultralytics_yaml_with_num_classes() -> None:
    model = build(architecture="yolov5n.yaml", num_classes=3)

    assert type(model).__name__ == "DetectionModel"
    assert model.yaml["nc"] == 3


def test_ultralytics_checkpoint_is_the_architecture(tmp_path: Path) -> None:
    from support.model_helpers import assert_same_state, randomized

    from plato_sedna.models import formats
    from plato_sedna.models.architectures import build as build_architecture

    original = randomized(build(architecture="yolov5n.yaml", num_classes=2))
    checkpoint = tmp_path / "yolov5n-2.pt"
    formats.write(original, "ultralytics", checkpoint)

    rebuilt = build_architecture(settings(architecture="yolov5s.pt"), checkpoint=checkpoint)

    assert_same_state(original, rebuilt)


def test_ultralytics_checkpoint_name_is_never_downloaded() -> None:
    with pytest.raises(
        ResourceError, match="'yolov5s.pt' is not a local file and is never downloaded"
    ):
        build(architecture="yolov5s.pt")


def test_unknown_architecture_lists_the_kinds_and_names() -> None:
    with pytest.raises(ResourceError) as raised:
        build(architecture="lenet6")

    message = str(raised.value)
    assert "'lenet6' ([parameters.model] architecture) is unknown" in message
    for known in (
        "plato (types",
        "lenet5",
        "resnet",
        "vgg",
        "torchvision (alexnet",
        "huggingface",
        "ultralytics",
    ):
        assert known in message


def test_framework_setting_chooses_the_kind() -> None:
    with pytest.raises(ResourceError, match="framework 'keras'"):
        build(architecture="lenet5", framework="keras")
    with pytest.raises(ResourceError, match="cannot read the Hugging Face config of 'lenet5'"):
        build(architecture="lenet5", framework="huggingface")


def test_config_wins_over_annotations_over_spec_fields() -> None:
    annotations = {"plato.sedna.io/model-name": "resnet_18", "plato.sedna.io/num-classes": "7"}
    spec = {"model_name": "vgg_16", "num_classes": 3, "pretrained": "false", "framework": "plato"}

    resolved = resolve_settings(
        {"architecture": "lenet5", "lr": 1}, annotations, spec, model_ref="ns/m"
    )

    assert (
        resolved.architecture,
        resolved.num_classes,
        resolved.pretrained,
        resolved.framework,
    ) == ("lenet5", 7, False, "plato")
    assert resolved.sources["num_classes"] == "Model ns/m annotation plato.sedna.io/num-classes"
    assert resolved.sources["pretrained"] == "Model ns/m spec.pretrained"
    assert resolved.arguments == {"lr": 1}
    from_spec = resolve_settings({}, {}, spec)
    assert from_spec.architecture == "vgg_16"


def test_num_classes_from_the_dataset_annotation() -> None:
    resolved = resolve_settings(
        {"architecture": "lenet5"}, dataset_annotations={"plato.sedna.io/num-classes": "4"}
    )

    assert resolved.num_classes == 4
    assert resolved.sources["num_classes"] == "the Dataset annotation plato.sedna.io/num-classes"


def test_bad_setting_values_name_their_source() -> None:
    with pytest.raises(ConfigError, match=r"plato.sedna.io/num-classes = 'ten' is not valid"):
        resolve_settings({"architecture": "lenet5"}, {"plato.sedna.io/num-classes": "ten"})
    with pytest.raises(ConfigError, match=r"\[parameters.model\] input_shape"):
        resolve_settings({"architecture": "lenet5", "input_shape": [0, 28]})


def test_no_architecture_names_the_model() -> None:
    with pytest.raises(ResourceError, match="annotate Model ns/m with plato.sedna.io/model-name"):
        resolve_settings({}, {}, {}, model_ref="ns/m")
