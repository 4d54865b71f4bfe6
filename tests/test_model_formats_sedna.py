"""Sedna's Model formats (pb, ckpt, pt, pth, onnx, safetensors, huggingface): each publishes and
reads back, or is refused at start with the formats the model can take."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml
from support.build_model import run_in_fresh_process
from support.model_helpers import assert_same_state, build, randomized, settings
from plato_sedna.errors import ResourceError
from plato_sedna.models import formats
from plato_sedna.models.publish import ModelPublisher, PublishSettings
from plato_sedna.models.sedna_resource import build_model

pytest_plugins = ("support.storage_fixtures", "support.model_fixtures")

UPSTREAM = Path(__file__).resolve().parent / "data" / "upstream"
LENET = {"architecture": "lenet5", "num_classes": 10}
METRICS = {"rounds": 1, "accuracy": 0.5}


def publish(model, name: str, url: str, storage, tmp_path: Path) -> str:
    fmt = formats.canonical_format(name, model)
    publisher = ModelPublisher(url, storage, tmp_path / "staged", fmt, PublishSettings(), (1, 28, 28))
    return publisher.publish(model, METRICS, 1)


@pytest.mark.parametrize(("name", "file"), [("pth", "m.pth"), ("pt", "m.pt"), ("ckpt", "m.ckpt"), ("safetensors", "m.safetensors")])
def test_state_dict_formats_read_back(name: str, file: str, tmp_path: Path, storage) -> None:
    model = randomized(build(**LENET))

    url = publish(model, name, str(tmp_path / "out" / file), storage, tmp_path)

    assert_same_state(model, build_model(settings(**LENET), url, storage))


@pytest.mark.parametrize("name", ["onnx", "pb"])
def test_onnx_and_pb_run_under_onnxruntime(name: str, tmp_path: Path, storage) -> None:
    """pb: TensorFlow's graph has no PyTorch writer; the .pb file is an ONNX graph (a protocol buffer)."""
    import numpy as np
    import onnxruntime
    import torch

    model = randomized(build(**LENET)).eval()
    folder = tmp_path / "model"  # Sedna's surface-defect example: url /model, a folder
    folder.mkdir()

    url = publish(model, name, str(folder), storage, tmp_path)

    assert url == str(folder / f"model.{name}")
    sample = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    session = onnxruntime.InferenceSession(url, providers=["CPUExecutionProvider"])
    (outputs,) = session.run(None, {"input": sample.numpy()})
    np.testing.assert_allclose(outputs, model(sample).detach().numpy(), rtol=1e-4, atol=1e-5)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["format"] == name
    assert metrics.get("written_as") == ("onnx" if name == "pb" else None)


def test_huggingface_folder_reads_back(bert_folder: Path, tmp_path: Path, storage) -> None:
    model = randomized(build(architecture=str(bert_folder)))

    url = publish(model, "huggingface", str(tmp_path / "bert/"), storage, tmp_path)

    assert_same_state(model, build(architecture=url))


def test_pb_is_announced_and_a_suffix_naming_another_format_is_warned(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        formats.warn_if_not_what_it_says("pb", "Model default/surface-defect-detection-model spec.format", "/model")
    assert "published as an ONNX graph, itself a protocol buffer, in a .pb file" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # Sedna's CRD sample: format ckpt, url /model/frozen.pb
        formats.warn_if_not_what_it_says("pth", "Model default/model-demo1 spec.format", "/model/frozen.pb")
    assert "ends in .pb, but the model is published as pth" in caplog.text
    assert "a PyTorch state dict" in caplog.text
    caplog.clear()
    formats.warn_if_not_what_it_says("pth", "spec.format", "/model/net.ckpt")
    formats.warn_if_not_what_it_says("ultralytics", "spec.format", "/model/yolo.pt")
    assert not caplog.records


def upstream_models() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(UPSTREAM.rglob("*model*.y*ml")):  # some job files are not YAML as written
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == "Model":
                found.append((str(path.relative_to(UPSTREAM)), document["spec"]))
    return found


@pytest.mark.parametrize(("where", "spec"), upstream_models())
def test_every_upstream_model_format_can_be_published(where: str, spec: dict) -> None:
    """Sedna's examples (pb, ckpt, pth) and the proposal's vgg_16 (ckpt) all run as written."""
    architecture = spec.get("model_name", "lenet5")
    assert formats.check_publishable(spec["format"], architecture) is None, where


def test_formats_a_model_cannot_take_are_refused_with_the_list() -> None:
    problem = formats.check_publishable("tflite", "lenet5")
    assert problem == (
        "model format 'tflite' (the Model's spec.format) is not a model format; plato models "
        "(lenet5) can be published as: pth, pt, ckpt, safetensors, onnx, pb"
    )
    assert "cannot be written for plato models" in formats.check_publishable("huggingface", "lenet5")
    assert "can be published as: huggingface, pth, pt, ckpt, safetensors" in formats.check_publishable(
        "pb", "org/tiny-bert"
    )
    assert formats.check_publishable("huggingface", "yolov5n.yaml").endswith(
        "ultralytics models (yolov5n.yaml) can be published as: pt, ultralytics, pth, ckpt, safetensors, onnx, pb"
    )
    assert "needs one sample's shape" in formats.check_publishable("onnx", "multilayer")
    assert formats.check_publishable("onnx", "multilayer", input_shape=(600,)) is None
    for name in ("pb", "ckpt", "pt", "pth", "onnx", "safetensors"):
        assert formats.check_publishable(name, "resnet18") is None
        assert formats.check_publishable(name, "yolov5n.yaml") is None
    assert formats.check_publishable("huggingface", "org/tiny-bert") is None
    assert formats.check_publishable(None, "lenet5") is None


def test_a_built_model_is_checked_the_same_way(bert_folder: Path) -> None:
    lenet = build(**LENET)
    with pytest.raises(ResourceError, match="cannot be published; supported: pth, pt, ckpt, safetensors, onnx, pb"):
        formats.canonical_format("savedmodel", lenet)
    bert = build(architecture=str(bert_folder))
    with pytest.raises(ResourceError, match="cannot be published as 'pb': a Hugging Face model takes token ids"):
        formats.canonical_format("pb", bert)
    assert formats.canonical_format("pb", lenet) == "pb"
    assert formats.canonical_format("ckpt", lenet) == "pth"


def test_the_aggregator_refuses_a_format_at_start(tmp_path: Path) -> None:
    """In the aggregator's Plato process, building the model checks the format (before any round)."""
    from test_class_counts import BUILD_MODEL, CONFIG

    config = tmp_path / "config.toml"
    config.write_text(
        CONFIG.format(
            data="",
            model='num_classes = 10\nformat = "tflite"',
            sedna=f'[sedna]\nrole = "aggregator"\nmodel_url = "{tmp_path / "model" / "net.tflite"}"',
        )
    )
    result = run_in_fresh_process(BUILD_MODEL, config, tmp_path, timeout=180)

    assert result.returncode != 0
    assert (
        "model format 'tflite' ([parameters.model] format) cannot be published; supported: "
        "pth, pt, ckpt, safetensors, onnx, pb" in result.stderr
    )
