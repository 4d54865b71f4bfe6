"""Sedna's own federated-learning examples, as written, through `plato-sedna run --nodes`.

Sedna's manifests name absolute hostPaths (`/data/1.txt`, `/model`): each is on the
node the pod runs on. `--nodes DIR` gives every node its own filesystem, DIR/<node>,
so the examples run unchanged without writing to this machine's /data or /model.

What changes is what a user moving to plato-sedna changes (tests/data/upstream/README.md):
the image, and the container command, because Sedna's images ran their own scripts:
`plato -c /config/fedavg.toml`, with fedavg.toml beside the manifests (a ConfigMap in a
cluster). The shell's `$CLOUD_NODE`, `$EDGE1_NODE`, `$EDGE2_NODE` are substituted.

A container with no command builds its config from the job, but Sedna's examples do not
give enough for that: the trainers' templates have no `exit_round` (only the aggregator's),
the Model names no architecture, and `format: pb` (published as ONNX) needs an input shape.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from support.processes import PLATO_SEDNA
from support.workers import clean_env

from plato_sedna.local.isolation import mount_namespaces

REPO = Path(__file__).resolve().parent.parent
SEDNA = REPO / "tests" / "data" / "upstream" / "sedna"
SDD = SEDNA / "surface_defect_detection"
IMAGE = "plato-sedna:0.1.0"
COMMAND = '["plato", "-c", "/config/fedavg.toml"]'
NODES = {"$CLOUD_NODE": "cloud", "$EDGE1_NODE": "edge1", "$EDGE2_NODE": "edge2"}
RUN_TIMEOUT_S = 400

# The user's own Plato config for the surface-defect images: LeNet-5 on 28x28 grayscale,
# two classes. The templates' env (batch_size, learning_rate, epochs; the aggregator's
# exit_round) wins over the file.
FEDAVG_TOML = """\
[clients]
type = "simple"
total_clients = 2
per_round = 2
do_test = true

[server]
address = "127.0.0.1"
port = 8000
random_seed = 1

[data]
datasource = "sednaDataResource"
random_seed = 1

[trainer]
type = "basic"
rounds = 1
epochs = 1
batch_size = 32
optimizer = "Adam"
model_name = "sednaModelResource"

[algorithm]
type = "fedavg"

[parameters.model]
architecture = "lenet5"
num_classes = 2
input_shape = [1, 28, 28]

[parameters.optimizer]
lr = 0.001
"""

pytestmark = pytest.mark.skipif(
    not mount_namespaces().available,
    reason=f"--nodes needs mount namespaces: {mount_namespaces().reason}",
)


def as_the_user_writes_it(
    files: dict[str, Path], target: Path, nodes: dict[str, str] = NODES, command: str | None = COMMAND
) -> Path:
    """The example's files in target: the shell's nodes substituted, our image and command in the job."""
    target.mkdir(parents=True)
    for name, source in files.items():
        content = source.read_text()
        for placeholder, node in nodes.items():
            content = content.replace(placeholder, node)
        if name == "job.yaml":
            content = with_image_and_command(content, command)
        (target / name).write_text(content)
    (target / "fedavg.toml").write_text(FEDAVG_TOML)
    return target  # the folder, as `kubectl apply -f` takes it: job.yaml alone lacks the Datasets


def with_image_and_command(job: str, command: str | None) -> str:
    lines = []
    for line in job.splitlines():
        if "image:" not in line:
            lines.append(line)
            continue
        lines.append(line.split("image:")[0] + f"image: {IMAGE}")
        if command is not None:
            lines.append(" " * line.index("image:") + f"command: {command}")
    return "\n".join(lines) + "\n"


def surface_defect_files(example: str = "surface_defect_detection") -> dict[str, Path]:
    folder = SEDNA / example
    return {name: folder / name for name in ("dataset-edge1.yaml", "dataset-edge2.yaml", "model.yaml", "job.yaml")}


def write_images(index: Path, size: int = 28) -> int:
    """A small grayscale JPEG at every path the index lists: a dark stripe marks a defect (label 1)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(abs(hash(index.name)) % 2**32)
    count = 0
    for line in index.read_text().splitlines():
        if not line.strip():
            continue
        relative, label = line.rsplit(",", 1)
        pixels = rng.integers(100, 156, (size, size), dtype=np.uint8)
        if int(label) == 1:
            row = int(rng.integers(4, size - 4))
            pixels[row - 2 : row + 2, :] = 15
        path = index.parent / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, "L").save(path, quality=95)
        count += 1
    return count


def node_root(root: Path, indexes: dict[str, list[str]], model_nodes: tuple[str, ...]) -> Path:
    """DIR/<node>/data/<index> with its images, and `mkdir /model` on the given nodes (Sedna's README)."""
    for node, names in indexes.items():
        data = root / node / "data"
        data.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy(SDD / name, data / name)
            assert write_images(data / name) > 500
    for node in model_nodes:
        (root / node / "model").mkdir(parents=True, exist_ok=True)
    return root


def plato_sedna_run(job_folder: Path, workdir: Path, nodes: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PLATO_SEDNA, "run", str(job_folder), "--nodes", str(nodes), "--workdir", str(workdir),
         "--timeout", str(RUN_TIMEOUT_S), "--grace", "30", *extra],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S + 60,
    )


def assert_published(result: subprocess.CompletedProcess, workdir: Path, nodes: Path, agg_node: str, rounds: int) -> dict:
    output = result.stdout + result.stderr
    summary = json.loads((workdir / "summary.json").read_text())
    assert result.returncode == 0, output[-6000:]
    assert summary["status"] == "succeeded", summary
    assert summary["rounds"] == rounds, summary
    assert summary["node_root"] == str(nodes.resolve())
    assert (summary["node_isolation"], summary["agg_ip"]) == (True, "surface-defect-detection-aggregation.default")
    # Model url /model, format pb, `mkdir /model` done: the ONNX export in the aggregator's node.
    published = nodes.resolve() / agg_node / "model" / "model.pb"
    assert summary["model_url"] == str(published)
    assert published.is_file() and published.stat().st_size > 0
    metrics = json.loads((published.parent / "metrics.json").read_text())
    assert metrics["rounds"] == rounds
    assert not (nodes / "edge1" / "model" / "model.pb").exists()  # only the aggregator publishes
    assert "Traceback" not in (workdir / "trainer-1" / "worker.log").read_text()
    return summary


# ---------------------------------------------------------------------------
# surface_defect_detection (v1 README): exit_round 3, two edges and the cloud


def test_surface_defect_detection_as_written(tmp_path: Path) -> None:
    """The fast case: three short rounds of LeNet-5 on 28x28 images, two trainers."""
    job = as_the_user_writes_it(surface_defect_files(), tmp_path / "example")
    nodes = node_root(tmp_path / "nodes", {"edge1": ["1.txt"], "edge2": ["2.txt"]}, ("cloud", "edge1", "edge2"))
    workdir = tmp_path / "run"

    result = plato_sedna_run(job, workdir, nodes)

    summary = assert_published(result, workdir, nodes, "cloud", rounds=3)
    assert [summary["workers"][key]["node"] for key in ("aggregator", "trainer-1", "trainer-2")] == ["cloud", "edge1", "edge2"]
    assert summary["accuracy"] is not None and summary["accuracy"] > 0.6, summary


@pytest.mark.slow  # about 40 s: three rounds, two trainers
def test_surface_defect_detection_v2_as_written(tmp_path: Path) -> None:
    job = as_the_user_writes_it(surface_defect_files("surface_defect_detection_v2"), tmp_path / "example")
    nodes = node_root(tmp_path / "nodes", {"edge1": ["1.txt"], "edge2": ["2.txt"]}, ("cloud", "edge1", "edge2"))
    workdir = tmp_path / "run"

    result = plato_sedna_run(job, workdir, nodes)

    assert_published(result, workdir, nodes, "cloud", rounds=3)


@pytest.mark.slow  # about 1-2 min: ten rounds
def test_crd_sample_v1alpha2_with_the_v2_readmes_resources(tmp_path: Path) -> None:
    """build/crd-samples' job runs both trainers on `edge-node` and the aggregator on
    `sedna-control-plane`: the user's shell puts both Datasets on edge-node."""
    files = {**surface_defect_files("surface_defect_detection_v2"), "job.yaml": SEDNA / "crd-samples" / "federatedlearningjob_v1alpha2.yaml"}
    both_on_edge_node = {"$CLOUD_NODE": "sedna-control-plane", "$EDGE1_NODE": "edge-node", "$EDGE2_NODE": "edge-node"}
    job = as_the_user_writes_it(files, tmp_path / "example", nodes=both_on_edge_node)
    nodes = node_root(tmp_path / "nodes", {"edge-node": ["1.txt", "2.txt"]}, ("sedna-control-plane", "edge-node"))
    workdir = tmp_path / "run"

    result = plato_sedna_run(job, workdir, nodes)

    summary = assert_published(result, workdir, nodes, "sedna-control-plane", rounds=10)
    assert {summary["workers"][key]["node"] for key in ("trainer-1", "trainer-2")} == {"edge-node"}


# ---------------------------------------------------------------------------
# A Dataset only on another node: the pod's file-not-found


@pytest.mark.slow  # about 1 min: the pod restarts (OnFailure) three times before the job fails
def test_a_trainer_whose_dataset_is_on_another_node_fails_as_its_pod_would(tmp_path: Path) -> None:
    """2.txt is on edge1 only; trainer-2 runs on edge2 (its template's nodeName), whose /data lacks it."""
    job = as_the_user_writes_it(surface_defect_files(), tmp_path / "example")
    nodes = node_root(tmp_path / "nodes", {"edge1": ["1.txt", "2.txt"]}, ("cloud", "edge1", "edge2"))
    (nodes / "edge2" / "data").mkdir()  # edge2 has a /data, without 2.txt
    workdir = tmp_path / "run"

    result = plato_sedna_run(job, workdir, nodes, "--timeout", "120")

    output = result.stdout + result.stderr
    summary = json.loads((workdir / "summary.json").read_text())
    assert result.returncode == 1, output[-4000:]
    assert summary["status"] == "failed"
    assert "worker trainer-2" in summary["error"], summary["error"]
    assert summary["workers"]["trainer-2"]["node"] == "edge2"
    assert summary["workers"]["trainer-2"]["exit_code"] not in (0, None)
    log = (workdir / "trainer-2" / "worker.log").read_text()
    assert "/home/data/data/2.txt" in log, log[-3000:]
    # trainer-1 read its own node's 1.txt at the GM's path.
    assert "/home/data/data/1.txt" not in log


# ---------------------------------------------------------------------------
# yolov5_coco128_mistnet: MistNet on YOLOv5, coco128 as a `format: dir` Dataset

YOLO = SEDNA / "yolov5_coco128_mistnet"
# The user's config for the YOLO images (demos/yolov5/mistnet.yml, 32 px shapes instead of
# coco128's photos). The templates' env gives cut_layer 4, epsilon 100 and the epochs
# (100 for the aggregator's back, as written).
MISTNET_YML = """\
clients: {type: mistnet, total_clients: 2, per_round: 2, do_test: false}
server: {type: mistnet, address: 127.0.0.1, port: 8000, random_seed: 1}
data: {datasource: sednaDataResource, image_size: 32, sampler: all_inclusive, random_seed: 1}
trainer: {type: yolov5, rounds: 1, epochs: 1, batch_size: 8, optimizer: AdamW, model_name: sednaModelResource}
algorithm: {type: mistnet, cut_layer: 4, epsilon: 100}
parameters:
  model: {architecture: yolov5n.yaml, num_classes: 3}
  optimizer: {lr: 0.002, weight_decay: 0.0005}
"""


@pytest.mark.slow  # minutes: the aggregator trains the back for 100 epochs, as the job says
def test_yolov5_coco128_mistnet_as_written(tmp_path: Path) -> None:
    """The Secret is the user's own (their S3 endpoint and keys: a loopback S3 server here);
    `/pretrained/yolov5.pth` is on every node, `/data/N/COCO` is coco128 as unzipped."""
    import boto3
    import torch
    from support.s3_server import start_s3_server
    from test_coco128_dir import coco128_like

    from plato_sedna.models import yolo

    names = ("dataset-1.yaml", "dataset-2.yaml", "model.yaml", "pretrained-model.yaml", "job.yaml")
    job = as_the_user_writes_it({name: YOLO / name for name in names}, tmp_path / "example",
                                command='["plato", "-c", "/config/mistnet.yml"]')
    (job / "mistnet.yml").write_text(MISTNET_YML)
    nodes = tmp_path / "nodes"
    for number, node in ((1, "edge1"), (2, "edge2")):
        coco128_like(nodes / node / "data" / str(number), images=8, side=32)
    torch.manual_seed(0)
    from ultralytics.nn.tasks import DetectionModel

    for node in ("edge1", "edge2", "cloud"):  # the pretrained Model is an input on every node
        (nodes / node / "pretrained").mkdir(parents=True)
        torch.save(yolo.checkpoint_of(DetectionModel("yolov5n.yaml", nc=3, verbose=False)), nodes / node / "pretrained" / "yolov5.pth")
        (nodes / node / "model").mkdir(parents=True)
    with start_s3_server() as s3:
        boto3.client("s3", endpoint_url=s3.endpoint_url, aws_access_key_id="k", aws_secret_access_key="s",
                     region_name="us-east-1").create_bucket(Bucket="sedna")
        secret = (YOLO / "secret.yaml").read_text()
        secret = secret.replace("s3.amazonaws.com", s3.endpoint_url.removeprefix("http://"))
        secret = secret.replace('s3-usehttps: "1"', 's3-usehttps: "0"')
        (job / "secret.yaml").write_text(secret)
        workdir = tmp_path / "run"
        result = plato_sedna_run(job, workdir, nodes)

    output = result.stdout + result.stderr
    summary = json.loads((workdir / "summary.json").read_text())
    assert result.returncode == 0, output[-6000:]
    assert summary["status"] == "succeeded" and summary["rounds"] == 1, summary
    published = nodes.resolve() / "cloud" / "model" / "yolov5.pth"
    assert summary["model_url"] == str(published) and published.is_file()
