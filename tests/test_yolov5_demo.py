"""The YOLOv5 demo: ultralytics detection trained by two trainers through `plato-sedna run`, offline.

The e2e run is the demo's own job.yaml and fedavg.toml on a tiny generated set (64 px,
1 epoch, 2 rounds); the other tests check the trainer's parts without processes.
"""

from __future__ import annotations

import csv
import json
import runpy
from pathlib import Path

import pytest
from test_quickstart_e2e import run_job

DEMO = Path(__file__).resolve().parents[1] / "demos" / "yolov5"
# By path: every demo has a prepare_data.py, and they must not shadow each other.
_PREPARE = runpy.run_path(str(DEMO / "prepare_data.py"))
_REPORT = runpy.run_path(str(DEMO / "report.py"))
CLASSES, prepare_shapes = _PREPARE["CLASSES"], _PREPARE["prepare_shapes"]
draw_detections, map_history, plot_map = (_REPORT[name] for name in ("draw_detections", "map_history", "plot_map"))

from plato_sedna.errors import ConfigError
from plato_sedna.trainers import yolo_arguments
from plato_sedna.trainers.yolo_data import sampled_indices, write_data_yaml

IMAGE_SIZE = 64


@pytest.fixture(scope="module")
def shapes_data(tmp_path_factory) -> Path:
    out_dir = tmp_path_factory.mktemp("shapes")
    prepare_shapes(out_dir, per_edge=12, val=8, side=IMAGE_SIZE)
    return out_dir


def demo_job(
    folder: Path, data: Path, rounds: int, epochs: int, batch_size: int, image_size: int
) -> Path:
    """The demo's manifests and config in ``folder`` beside ``data``, with these settings in the pod env."""
    import yaml

    folder.mkdir()
    settings = {"rounds": rounds, "epochs": epochs, "batch_size": batch_size}
    documents = list(yaml.safe_load_all((DEMO / "job.yaml").read_text()))
    for document in documents:
        if document["kind"] == "FederatedLearningJob":
            spec = document["spec"]
            templates = [
                spec["aggregationWorker"]["template"],
                *(w["template"] for w in spec["trainingWorkers"]),
            ]
            for container in (
                c for template in templates for c in template["spec"]["containers"]
            ):
                for variable in container.get("env", []):
                    variable["value"] = str(
                        settings.get(variable["name"], variable["value"])
                    )
    (folder / "job.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False))
    config = (DEMO / "fedavg.toml").read_text()
    assert "image_size = 96" in config
    (folder / "fedavg.toml").write_text(
        config.replace("image_size = 96", f"image_size = {image_size}")
    )
    (folder / "data").symlink_to(data, target_is_directory=True)
    return folder / "job.yaml"


def test_two_trainers_two_rounds_publish_a_model_ultralytics_loads(
    shapes_data: Path, tmp_path: Path, monkeypatch
) -> None:
    import torch

    workdir = tmp_path / "run"
    job = demo_job(
        tmp_path / "job",
        shapes_data,
        rounds=2,
        epochs=1,
        batch_size=8,
        image_size=IMAGE_SIZE,
    )
    result = run_job(job, workdir)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "succeeded" and summary["rounds"] == 2
    assert {w["exit_code"] for w in summary["workers"].values()} == {0}
    assert 0.0 <= summary["accuracy"] <= 1.0  # mAP50 of the global model

    history = map_history(workdir, summary)  # the aggregator's detection_metrics.csv
    assert history["round"] == [1, 2]
    assert history["mAP50"][-1] == pytest.approx(summary["accuracy"], abs=1e-6)
    assert all(0.0 <= value <= 1.0 for value in history["mAP50-95"])
    for trainer in ("trainer-1", "trainer-2"):
        log = (workdir / trainer / "worker.log").read_text()
        assert "Started training in communication round #2" in log

    model_path = Path(summary["model_url"])
    assert model_path == workdir / "model" / "yolov5n-shapes.pt"
    rounds = [
        torch.load(
            model_path.parent / f"round-000{r}" / "yolov5n-shapes.pt",
            weights_only=False,
        )
        for r in (1, 2)
    ]
    first, second = (checkpoint["model"].state_dict() for checkpoint in rounds)
    assert first.keys() == second.keys()
    assert any(
        not torch.equal(first[key], second[key])
        for key in first
        if first[key].is_floating_point()
    )

    monkeypatch.setenv(
        "YOLO_CONFIG_DIR", str(tmp_path / "ultralytics")
    )  # not left to later tests
    boxes = draw_detections(
        model_path,
        shapes_data / "val" / "images" / "val" / "0000.png",
        tmp_path / "detections.png",
        IMAGE_SIZE,
        conf=0.0001,
    )
    assert boxes >= 0 and (tmp_path / "detections.png").stat().st_size > 0
    from ultralytics import YOLO

    model = YOLO(str(model_path))
    assert model.task == "detect" and model.names == dict(enumerate(CLASSES))
    assert plot_map(history, tmp_path / "map.png", "test").stat().st_size > 0
    assert "Traceback" not in result.stdout + result.stderr


def test_plato_optimizer_keys_become_ultralytics_arguments(tmp_path: Path) -> None:
    common = yolo_arguments.common_arguments(
        {"batch_size": 8}, 64, "cuda:1", tmp_path / "train"
    )
    arguments = yolo_arguments.train_arguments(
        {"epochs": 2, "batch_size": 8, "optimizer": "adamw"},
        {"lr": 0.01, "momentum": 0.9},
        common,
        {"mosaic": 0.5},
        tmp_path / "data.yaml",
    )
    assert (
        arguments["optimizer"] == "AdamW"
        and arguments["lr0"] == 0.01
        and arguments["momentum"] == 0.9
    )
    assert (
        arguments["epochs"],
        arguments["batch"],
        arguments["nbs"],
        arguments["imgsz"],
    ) == (2, 8, 8, 64)
    assert (
        arguments["device"] == "1"
        and arguments["amp"] is False
        and arguments["plots"] is False
    )
    assert arguments["mosaic"] == 0.5 and arguments["project"] == str(tmp_path)


@pytest.mark.parametrize(
    ("table", "optimizer", "message"),
    [
        ({"mosiac": 1.0}, None, "mosiac is not an ultralytics argument"),
        ({"data": "x.yaml"}, None, "data is set by the yolov5 trainer"),
        ({}, "LBFGS", "'LBFGS' is not an ultralytics optimizer"),
    ],
)
def test_bad_ultralytics_settings_are_named(
    table: dict, optimizer: str | None, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message):
        checked = yolo_arguments.checked_table(table)
        yolo_arguments.train_arguments(
            {"epochs": 1, "batch_size": 2, "optimizer": optimizer},
            None,
            {"batch": 2},
            checked,
            tmp_path / "d.yaml",
        )


def test_sampled_images_become_a_data_yaml_without_download_scripts(
    tmp_path: Path,
) -> None:
    import torch
    import yaml

    subset = torch.utils.data.SubsetRandomSampler([5, 1, 3])
    assert sampled_indices(range(10), subset) == [1, 3, 5]
    assert sampled_indices(range(4), None) == [0, 1, 2, 3]
    listing = tmp_path / "train.txt"
    listing.write_text("/data/images/a.png\n")
    written = yaml.safe_load(
        write_data_yaml(
            tmp_path / "d" / "data.yaml", listing, listing, CLASSES
        ).read_text()
    )
    assert set(written) == {"path", "train", "val", "names"}
    assert written["names"] == {0: "circle", 1: "square", 2: "triangle"}


def test_wrong_class_count_or_dataset_kind_is_a_config_error() -> None:
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from plato_sedna.trainers.yolo import check_classes, check_detection_model
    from plato_sedna.trainers.yolo_data import check_detection_set

    model = DetectionModel("yolov5n.yaml", nc=80, verbose=False)
    with pytest.raises(
        ConfigError, match=r"80 classes but the training data has 3 .*num_classes = 3"
    ):
        check_classes(model, list(CLASSES), "training")
    with pytest.raises(ConfigError, match="YOLO-layout training set"):
        check_detection_set([(0, 1)], "training")
    with pytest.raises(
        ConfigError, match="trains ultralytics detection models, got Linear"
    ):
        check_detection_model(torch.nn.Linear(2, 2))


def test_prepare_data_writes_an_ultralytics_layout_per_edge(tmp_path: Path) -> None:
    import yaml

    counts = prepare_shapes(tmp_path, per_edge=4, val=2, side=64)
    assert counts == {"edge1": 4, "edge2": 4, "val": 2}
    for node in ("edge1", "edge2"):
        config = yaml.safe_load((tmp_path / node / "data.yaml").read_text())
        assert config["names"] == dict(enumerate(CLASSES))
        images = sorted((tmp_path / node / config["train"]).glob("*.png"))
        assert len(images) == 4
        for image in images:
            with (
                tmp_path / node / "labels" / "train" / f"{image.stem}.txt"
            ).open() as labels:
                for row in csv.reader(labels, delimiter=" "):
                    assert int(row[0]) in range(len(CLASSES)) and all(
                        0 < float(v) <= 1 for v in row[1:]
                    )


def test_a_model_url_ultralytics_takes_for_its_asset_is_warned(caplog) -> None:
    from plato_sedna.trainers.yolo import warn_on_asset_name

    for url in ("s3://bucket/yolov5n-global.pt", "/models/detector.pt", None):
        warn_on_asset_name(url)
    assert not caplog.records
    warn_on_asset_name("/models/yolov5s.pt")
    assert "asset yolov5su.pt" in caplog.text and "yolov5s-global.pt" in caplog.text


def test_the_proposal_shaped_yaml_config_is_the_toml_config() -> None:
    from plato_sedna.config import load_config_file

    assert load_config_file(DEMO / "fedavg.yml") == load_config_file(
        DEMO / "fedavg.toml"
    )


def test_a_newer_yolo_from_a_published_pt_trains_a_round_and_is_evaluated(
    shapes_data: Path, tmp_path: Path, monkeypatch
) -> None:
    """yolo11n.yaml (not v5), saved as the aggregator publishes it and read back as a .pt Model would be."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from plato_sedna.models import yolo
    from plato_sedna.trainers import yolo_offline
    from plato_sedna.trainers.yolo_round import evaluate, train_round

    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ultralytics"))
    yolo_offline.prepare()
    published = tmp_path / "yolo11n-global.pt"
    torch.save(
        yolo.checkpoint_of(
            DetectionModel("yolo11n.yaml", nc=len(CLASSES), verbose=False)
        ),
        published,
    )
    model = yolo.load_checkpoint(published)
    images = sorted((shapes_data / "edge1" / "images" / "train").glob("*.png"))[:8]
    listing = tmp_path / "train.txt"
    listing.write_text("".join(f"{image}\n" for image in images))
    data_yaml = write_data_yaml(
        tmp_path / "data" / "data.yaml", listing, listing, CLASSES
    )
    common = yolo_arguments.common_arguments(
        {"batch_size": 4}, IMAGE_SIZE, "cpu", tmp_path / "runs" / "train"
    )
    arguments = yolo_arguments.train_arguments(
        {"epochs": 1, "batch_size": 4}, None, common, {}, data_yaml
    )

    result = train_round(model, arguments)

    before = model.state_dict()
    assert result.state_dict.keys() == before.keys()
    assert all(
        result.state_dict[k].dtype == before[k].dtype for k in before
    )  # fp32 and int64 counters
    assert any(
        not torch.equal(result.state_dict[k], before[k])
        for k in before
        if before[k].is_floating_point()
    )
    model.load_state_dict(result.state_dict)
    detections = evaluate(model, yolo_arguments.val_arguments(common, {}, data_yaml))
    assert 0.0 <= detections.map50_95 <= detections.map50 <= 1.0
    assert not list(
        (tmp_path / "runs" / "train" / "weights").glob("*.pt")
    )  # no per-round checkpoints
