"""MistNet on ultralytics' YOLO: the split at a module index, the features crossing the cut, one round end to end.

The split tests check exactness (front -> binarise -> back is the model's own
forward) on several cuts of yolov5n; the e2e run is demos/yolov5/mistnet-job.yaml
and mistnet.yml on a tiny generated set (64 px), with a pretrained front made in the
test (a seeded yolov5n saved as the aggregator publishes it).
"""

from __future__ import annotations

import copy
import json
import runpy
from pathlib import Path

import pytest
import yaml
from test_quickstart_e2e import run_job

from plato_sedna.errors import ConfigError

DEMO = Path(__file__).resolve().parents[1] / "demos" / "yolov5"
_PREPARE = runpy.run_path(str(DEMO / "prepare_data.py"))
CLASSES, prepare_shapes = _PREPARE["CLASSES"], _PREPARE["prepare_shapes"]
IMAGE_SIZE = 64
# yolov5n's modules after the first, as the error lists them.
YOLOV5N_CUTS = (
    "1:Conv, 2:C3, 3:Conv, 4:C3, 5:Conv, 6:C3, 7:Conv, 8:C3, 9:SPPF, 10:Conv, 11:Upsample, 12:Concat, "
    "13:C3, 14:Conv, 15:Upsample, 16:Concat, 17:C3, 18:Conv, 19:Concat, 20:C3, 21:Conv, 22:Concat, 23:C3, 24:Detect"
)


def yolov5n():
    import torch
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    return DetectionModel("yolov5n.yaml", nc=len(CLASSES), verbose=False).eval()


# The split


@pytest.mark.parametrize(
    ("cut", "crossing"),
    [(1, (0,)), (4, (3,)), (7, (4, 6)), (13, (4, 10, 12)), (17, (10, 14, 16)), (24, (17, 20, 23))],
)
def test_front_binarise_back_is_the_models_forward(cut: int, crossing: tuple[int, ...]) -> None:
    import torch

    from plato_sedna.algorithms.model_split import split_model

    model = yolov5n()
    images = torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    split = split_model(model, cut, "yolov5n")
    assert split.crossing == crossing and split.cut_name == cut
    features = split.front(images)
    assert len(features) == len(crossing) and any((f < 0).any() for f in features)  # real-valued before binarising
    binary = [(f > 0).float() for f in features]
    expected = model(images)[0]
    assert torch.equal(split.back(binary)[0], expected)  # the hooks binarise the crossing inputs
    assert torch.equal(split.back(features)[0], expected)  # idempotent: raw features are binarised too
    front_keys = split.front_state_keys()
    assert front_keys == {k for k in model.state_dict() if int(k.split(".")[1]) < cut}


def test_training_the_back_leaves_the_front_and_the_state_dict_keys() -> None:
    import torch

    from plato_sedna.algorithms import yolo_back
    from plato_sedna.algorithms.model_split import split_model
    from plato_sedna.algorithms.yolo_features import (
        DetectionFeatureSet,
        DetectionFeatureUpload,
    )

    model = yolov5n()
    keys = list(model.state_dict())
    split = split_model(model, 7, "yolov5n")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.rand(4, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        bits = tuple(f > 0 for f in split.front(images))
    boxes = [torch.tensor([[n % 3, 0.5, 0.5, 0.3, 0.3]]).numpy() for n in range(4)]
    upload = DetectionFeatureUpload.from_batches([bits], boxes)
    assert upload.bits_per_sample == sum(b[0].numel() for b in bits)
    float32_bytes = upload.num_samples * upload.bits_per_sample * 4
    assert upload.size_bytes() < float32_bytes // 20  # bits packed 8 a byte; boxes and pickling included
    features = DetectionFeatureSet([upload, upload])
    assert len(features) == 8
    loss = yolo_back.train_back(split, features, yolo_back.BackTraining(epochs=2, batch_size=4), {}, "cpu")

    assert loss is not None and loss > 0
    after = model.state_dict()
    assert list(after) == keys
    assert all(torch.equal(after[k], before[k]) for k in split.front_state_keys())
    assert torch.equal(after["model.24.dfl.conv.weight"], before["model.24.dfl.conv.weight"])
    assert not torch.equal(after["model.23.cv1.conv.weight"], before["model.23.cv1.conv.weight"])


@pytest.mark.parametrize(
    ("cut_layer", "message"),
    [
        (0, "algorithm.cut_layer = 0 is not a module index yolov5n can be cut at"),
        (25, "algorithm.cut_layer = 25 is not a module index"),
        ("relu3", "algorithm.cut_layer = 'relu3' is not a module index"),
        (None, "algorithm.cut_layer is not set; MistNet cuts yolov5n at a module index"),
    ],
)
def test_a_cut_the_detector_lacks_lists_its_modules(cut_layer, message: str) -> None:
    from plato_sedna.algorithms.model_split import split_model

    with pytest.raises(ConfigError) as raised:
        split_model(yolov5n(), cut_layer, "yolov5n")
    text = str(raised.value)
    assert message in text and YOLOV5N_CUTS in text
    assert "exclusive: trainers run modules 0 to cut_layer - 1" in text


# One round through `plato-sedna run`


@pytest.fixture(scope="module")
def shapes_data(tmp_path_factory) -> Path:
    out_dir = tmp_path_factory.mktemp("shapes")
    prepare_shapes(out_dir, per_edge=12, val=8, side=IMAGE_SIZE)
    return out_dir


def mistnet_demo_job(folder: Path, data: Path, pretrained: Path, epochs: int) -> Path:
    """demos/yolov5/mistnet-job.yaml and mistnet.yml in ``folder``, the front from ``pretrained``, 64 px."""
    folder.mkdir()
    documents = list(yaml.safe_load_all((DEMO / "mistnet-job.yaml").read_text()))
    for document in documents:
        if document["metadata"]["name"] == "shapes-yolov5n-front":
            document["spec"]["url"] = str(pretrained)
        if document["kind"] == "FederatedLearningJob":
            for worker in document["spec"]["trainingWorkers"]:
                for container in worker["template"]["spec"]["containers"]:
                    for variable in container["env"]:
                        variable["value"] = {"batch_size": "8", "epochs": str(epochs)}.get(variable["name"], variable["value"])
    (folder / "job.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False))
    config = (DEMO / "mistnet.yml").read_text()
    assert "image_size: 96" in config and "epochs: 30" in config
    config = config.replace("image_size: 96", f"image_size: {IMAGE_SIZE}").replace("epochs: 30", f"epochs: {epochs}")
    (folder / "mistnet.yml").write_text(config)
    (folder / "data").symlink_to(data, target_is_directory=True)
    return folder / "job.yaml"


@pytest.mark.slow
def test_mistnet_round_publishes_a_detector_that_binarises_and_scores_as_reported(
    shapes_data: Path, tmp_path: Path, monkeypatch
) -> None:
    import torch

    from plato_sedna.models import yolo
    from plato_sedna.trainers import yolo_arguments, yolo_offline
    from plato_sedna.trainers.yolo_data import write_data_yaml
    from plato_sedna.trainers.yolo_round import evaluate

    pretrained = tmp_path / "front.pt"
    torch.save(yolo.checkpoint_of(yolov5n()), pretrained)
    workdir = tmp_path / "run"
    result = run_job(mistnet_demo_job(tmp_path / "job", shapes_data, pretrained, epochs=3), workdir)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "succeeded" and summary["rounds"] == 1
    assert {w["exit_code"] for w in summary["workers"].values()} == {0}
    model_path = Path(summary["model_url"])
    metrics = json.loads((model_path.parent / "metrics.json").read_text())
    assert metrics["algorithm"] == "mistnet" and metrics["cut_layer"] == 4 and metrics["epsilon"] == 100
    assert metrics["binarized_at"].startswith("cut before module 4 (C3): trainers run modules 0-3")
    assert set(metrics["uploaded_bytes"]) == {"shapes-edge1", "shapes-edge2"}
    # 12 images of 64 x 8 x 8 bits (512 bytes) plus boxes and pickling
    assert all(6_000 < size < 20_000 for size in metrics["uploaded_bytes"].values()), metrics["uploaded_bytes"]
    aggregator_log = (workdir / "aggregator" / "worker.log").read_text()
    assert "MistNet back epoch 3/3" in aggregator_log and "cut before module 4 (C3)" in aggregator_log
    assert "Traceback" not in result.stdout + result.stderr

    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ultralytics"))
    yolo_offline.prepare()
    from ultralytics import YOLO

    published = YOLO(str(model_path))
    assert published.task == "detect" and published.names == dict(enumerate(CLASSES))
    plain = copy.deepcopy(published.model).float().eval()
    for module in plain.model:
        module._forward_pre_hooks.clear()
    images = torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert not torch.allclose(plain(images)[0], published.model.float().eval()(images)[0])  # binarises at the cut
    front = {k: v for k, v in torch.load(pretrained, weights_only=False)["model"].state_dict().items() if k.startswith(("model.0.", "model.3."))}
    assert all(torch.equal(published.model.state_dict()[k].float(), v) for k, v in front.items())  # the front stayed frozen
    published.predict(str(shapes_data / "val" / "images" / "val" / "0000.png"), imgsz=IMAGE_SIZE, verbose=False)
    # Read back as a pretrained Model (our safe loader), it trains again without the old cut's hooks.
    reloaded = yolo.load_checkpoint(model_path)
    assert not any(module._forward_pre_hooks for module in reloaded.modules())

    # The published model binarises at the cut itself: its mAP50 on the test set is the one reported.
    images = sorted((shapes_data / "val" / "images" / "val").glob("*.png"))
    listing = tmp_path / "val.txt"
    listing.write_text("".join(f"{image}\n" for image in images))
    data_yaml = write_data_yaml(tmp_path / "val" / "data.yaml", listing, listing, CLASSES)
    common = yolo_arguments.common_arguments({"batch_size": 8}, IMAGE_SIZE, "cpu", tmp_path / "runs" / "val")
    detections = evaluate(published.model, yolo_arguments.val_arguments(common, {}, data_yaml))
    assert detections.map50 == pytest.approx(summary["accuracy"], abs=1e-6)
    assert metrics["tested_on"].startswith("the aggregator's test set")
