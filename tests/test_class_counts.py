"""Class counts follow the data when nothing states them, and pretrained heads are re-headed.

The model is built in a Plato process (a subprocess with its own config), as a
trainer or the aggregator builds it: through Plato's model registry.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import QUICKSTART, REPO
from support.build_model import run_in_fresh_process
from support.model_helpers import build, randomized, settings
from plato_sedna.models.sedna_resource import build_model

pytest_plugins = ("support.storage_fixtures", "support.model_fixtures")

BUILD_MODEL = """
import json, sys
sys.argv = ["plato", "-c", sys.argv[1], "-b", sys.argv[2]]
from plato.config import Config
Config()
import plato_sedna
from plato.models import registry
model = registry.get()
heads = [m.out_features for m in model.modules() if type(m).__name__ == "Linear"]
print(json.dumps({"outputs": heads[-1] if heads else model.yaml["nc"]}))
"""

CONFIG = """
[clients]
total_clients = 1
per_round = 1
[server]
address = "127.0.0.1"
port = 8000
[data]
datasource = "sednaDataResource"
{data}
[trainer]
rounds = 1
epochs = 1
batch_size = 4
model_name = "sednaModelResource"
[algorithm]
type = "fedavg"
[parameters.model]
architecture = "lenet5"
{model}
{sedna}
"""


def write_index(folder: Path, labels: list[int]) -> Path:
    """A Sedna txt index of 28x28 grey images with these labels."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, label in enumerate(labels):
        Image.new("L", (28, 28), 40 * label + i).save(folder / f"{i}.png")
        lines.append(f"{i}.png {label}\n")
    (folder / "index.txt").write_text("".join(lines))
    return folder / "index.txt"


def built_outputs(tmp_path: Path, data: str = "", model: str = "", sedna: str = "") -> tuple[int, str]:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(data=data, model=model, sedna=sedna))
    result = run_in_fresh_process(BUILD_MODEL, config, tmp_path, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])["outputs"], result.stderr


def test_lenet5_on_a_two_class_dataset_has_two_outputs(tmp_path: Path) -> None:
    index = write_index(tmp_path / "data", [0, 1, 0, 1, 1, 0])

    outputs, log = built_outputs(tmp_path, data=f'train_url = "{index}"')

    assert outputs == 2
    assert f"2 output classes, from the classes of the dataset {index}" in log


def test_a_stated_count_wins_over_the_data(tmp_path: Path) -> None:
    index = write_index(tmp_path / "data", [0, 1, 0, 1])

    outputs, log = built_outputs(tmp_path, data=f'train_url = "{index}"', model="num_classes = 10")

    assert outputs == 10 and "output classes, from" not in log


def job_manifests(tmp_path: Path, second_url: str) -> Path:
    """The quickstart's job with edge1 on a 2-class index and edge2 at ``second_url``."""
    documents = list(yaml.safe_load_all((QUICKSTART / "job.yaml").read_text()))
    for document in documents:
        if document["metadata"]["name"] == "digits-edge1":
            document["spec"]["url"] = "edge1/index.txt"
        if document["metadata"]["name"] == "digits-edge2":
            document["spec"]["url"] = second_url
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump_all(documents))
    return job


def sedna_table(role: str, job: Path) -> str:
    dataset = 'dataset_name = "digits-edge1"\n' if role == "trainer" else ""
    return f'[sedna]\nrole = "{role}"\njob_name = "digits-fedavg"\nmanifests = "{job}"\n{dataset}'


def built_on_each_side(tmp_path: Path, job) -> list[tuple[str, tuple[int, str]]]:
    """(role, (outputs, log)) of the model a trainer and the aggregator build for ``job``."""
    built = []
    for role in ("trainer", "aggregator"):
        folder = tmp_path / role
        folder.mkdir()
        built.append((role, built_outputs(folder, sedna=sedna_table(role, job))))
    return built


def test_the_aggregator_and_trainers_count_every_dataset_of_the_job(tmp_path: Path) -> None:
    """A non-IID share may lack classes: all sides take the largest count of the job's Datasets."""
    write_index(tmp_path / "edge1", [0, 1, 0, 1])
    write_index(tmp_path / "edge2", [0, 2, 1, 2])
    job = job_manifests(tmp_path, "edge2/index.txt")

    for role, (outputs, log) in built_on_each_side(tmp_path, job):
        assert outputs == 3, role
        assert "The job's Datasets have 2, 3 classes; the model takes the largest, 3" in log


def test_a_dataset_no_worker_can_read_keeps_the_default_on_every_side(tmp_path: Path) -> None:
    """In a cluster another node's hostPath is unreadable: no side guesses, all keep lenet5's 10."""
    write_index(tmp_path / "edge1", [0, 1, 0, 1])
    job = job_manifests(tmp_path, "/nowhere/edge2.txt")

    for role, (outputs, log) in built_on_each_side(tmp_path, job):
        assert outputs == 10, role
        assert "class count is unknown here" in log


def test_a_classifier_checkpoint_for_other_classes_is_reheaded(
    tmp_path: Path, storage, caplog
) -> None:
    import torch

    pretrained = randomized(build(architecture="lenet5", num_classes=10))
    torch.save(pretrained.state_dict(), tmp_path / "lenet10.pth")

    with caplog.at_level(logging.WARNING):
        model = build_model(
            settings(architecture="lenet5", num_classes=2), str(tmp_path / "lenet10.pth"), storage
        )

    assert model.fc5.out_features == 2
    assert torch.equal(model.conv1.weight, pretrained.conv1.weight)
    assert "has 10 classes and this model 2: its output layer (fc5.*) is replaced" in caplog.text


def test_with_no_count_known_the_checkpoint_keeps_its_head(tmp_path: Path, storage) -> None:
    import torch

    pretrained = randomized(build(architecture="resnet18", num_classes=4))
    torch.save(pretrained.state_dict(), tmp_path / "resnet4.pth")

    model = build_model(settings(architecture="resnet18"), str(tmp_path / "resnet4.pth"), storage)

    assert model.fc.out_features == 4
    assert torch.equal(model.fc.weight, pretrained.fc.weight)


@pytest.mark.parametrize("as_architecture", [False, True])
def test_an_ultralytics_checkpoint_for_other_classes_is_reheaded(
    as_architecture: bool, tmp_path: Path, storage, caplog
) -> None:
    import torch

    from plato_sedna.models import yolo

    pretrained = randomized(build(architecture="yolov5n.yaml", num_classes=3))
    path = tmp_path / "detector-3.pt"
    torch.save(yolo.checkpoint_of(pretrained), path)

    with caplog.at_level(logging.WARNING):
        if as_architecture:  # the .pt is the architecture and its weights
            model = build_model(settings(architecture=str(path), num_classes=2), None, storage)
        else:
            model = build_model(settings(architecture="yolov5n.yaml", num_classes=2), str(path), storage)

    assert model.yaml["nc"] == 2
    state, before = model.state_dict(), pretrained.state_dict()
    assert torch.equal(state["model.0.conv.weight"], before["model.0.conv.weight"])
    assert state["model.24.cv3.0.2.weight"].shape[0] == 2
    assert "has 3 classes and this model 2: its output layer (model.24.*) is replaced" in caplog.text


TRAIN_YOLO = """
import json, sys
sys.argv = ["plato", "-c", sys.argv[1], "-b", sys.argv[2]]
from plato.config import Config
Config()
import plato_sedna, torch
from plato.datasources import registry as datasources
from plato.trainers import registry as trainers
source = datasources.get()
trainer = trainers.get()
before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
trainer.train_model({"epochs": 1, "batch_size": 4}, source.get_train_set(), None)
after = trainer.model.state_dict()
print(json.dumps({"nc": trainer.model.yaml["nc"], "names": trainer.model.names,
                  "changed": any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())}))
"""

YOLO_CONFIG = """
[clients]
total_clients = 1
per_round = 1
[server]
address = "127.0.0.1"
port = 8000
[data]
datasource = "sednaDataResource"
train_url = "{data_yaml}"
image_size = 64
[trainer]
type = "yolov5"
rounds = 1
epochs = 1
batch_size = 4
model_name = "sednaModelResource"
[algorithm]
type = "fedavg"
[parameters.model]
architecture = "yolov5n.yaml"
"""


def two_class_shapes(folder: Path) -> Path:
    """The demo's generated shapes, squares and triangles merged into one class."""
    import runpy

    prepare = runpy.run_path(str(REPO / "demos" / "yolov5" / "prepare_data.py"))["prepare_shapes"]
    prepare(folder, per_edge=8, val=2, side=64)
    edge = folder / "edge1"
    for label_file in (edge / "labels").rglob("*.txt"):
        rows = [row.split() for row in label_file.read_text().splitlines() if row.strip()]
        label_file.write_text("".join(f"{min(int(r[0]), 1)} {' '.join(r[1:])}\n" for r in rows))
    config = yaml.safe_load((edge / "data.yaml").read_text())
    config["names"] = {0: "circle", 1: "polygon"}
    (edge / "data.yaml").write_text(yaml.safe_dump(config))
    return edge / "data.yaml"


@pytest.mark.slow  # one ultralytics round in a Plato process (~25 s on 2 cores)
def test_a_yolo_yaml_takes_the_data_class_count_and_trains_a_round(tmp_path: Path) -> None:
    data_yaml = two_class_shapes(tmp_path / "shapes")
    config = tmp_path / "config.toml"
    config.write_text(YOLO_CONFIG.format(data_yaml=data_yaml))

    result = subprocess.run(
        [sys.executable, "-c", TRAIN_YOLO, str(config), str(tmp_path / "base")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO),
            "YOLO_CONFIG_DIR": str(tmp_path / "ultralytics"),
        },
    )

    assert result.returncode == 0, result.stderr[-3000:]
    trained = json.loads(result.stdout.strip().splitlines()[-1])
    assert trained["nc"] == 2 and trained["names"] == {"0": "circle", "1": "polygon"}
    assert trained["changed"]
    assert f"2 output classes, from the classes of the dataset {data_yaml}" in result.stderr
