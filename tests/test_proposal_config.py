"""The proposal's config-by-url job (tests/data/upstream/proposal), as written.

`job-platoconfig.yaml` names its Plato config by `spec.aggregationWorker.platoConfig.url:
"sdd_rcnn.yml"` and its containers have no command; `sdd_rcnn.yml` has no [server] and runs
MistNet on `trainer.type: yolov5` (cut_layer 4, epsilon 100, epochs 500, max_concurrency 3,
sednaDataResource, sednaModelResource). The Dataset and the Model the job names are the
user's cluster resources, written here over a tiny generated YOLO set (32 px shapes).

1. `plato-sedna run` on the job, the config beside it (a relative url);
2. the same job with the url changed to `s3://<bucket>/sdd_rcnn.yml`, the config only in S3;
3. plain Plato: `plato -c sdd_rcnn.yml` with one simulated client.
"""

from __future__ import annotations

import json
import runpy
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from support.processes import plain_env, reap_clients, start_run, wait_run
from support.s3_server import ANY_ACCESS_KEY_ID, ANY_SECRET_ACCESS_KEY
from test_quickstart_e2e import run_job

pytest_plugins = ("support.storage_fixtures",)

ROOT = Path(__file__).resolve().parents[1]
PROPOSAL = Path(__file__).parent / "data" / "upstream" / "proposal"
CONFIG = PROPOSAL / "sdd_rcnn.yml"
JOB = PROPOSAL / "job-platoconfig.yaml"
PREPARE_SHAPES = runpy.run_path(str(ROOT / "demos" / "yolov5" / "prepare_data.py"))["prepare_shapes"]
IMAGE_SIZE = 32
PER_EDGE = 2  # the aggregator trains the back for the config's 500 epochs over these features

# The user's cluster resources the job names; the Dataset is edge1's part of the generated set.
DATASET = "edge1-surface-defect-detection-dataset"
RESOURCES = f"""\
apiVersion: sedna.io/v1alpha1
kind: Dataset
metadata:
  name: {DATASET}
  annotations:
    plato.sedna.io/image-size: "{IMAGE_SIZE}"
    plato.sedna.io/num-classes: "3"
spec:
  url: data/edge1/data.yaml
  format: yolo
  nodeName: edge1
---
apiVersion: sedna.io/v1alpha1
kind: Model
metadata:
  name: surface-defect-detection-model
  annotations:
    plato.sedna.io/model-name: yolov5n.yaml
    plato.sedna.io/num-classes: "3"
spec:
  url: model/sdd.pt
  format: pt
"""


@pytest.fixture(scope="module")
def shapes_data(tmp_path_factory) -> Path:
    out_dir = tmp_path_factory.mktemp("sdd-shapes")
    PREPARE_SHAPES(out_dir, per_edge=PER_EDGE, val=4, side=IMAGE_SIZE)
    return out_dir


def substituted(text: str) -> str:
    """The job as `kubectl create -f - <<EOF` would send it, with CLOUD_NODE=cloud, EDGE1_NODE=edge1.

    `edgeX` in the Dataset's name is the proposal's placeholder for the edge's number too: a
    Kubernetes name has no capitals (see the test below), so the user names edge1's Dataset.
    """
    text = text.replace("$CLOUD_NODE", "cloud").replace("$EDGE1_NODE", "edge1")
    return text.replace("edgeX-surface-defect-detection-dataset", DATASET)


def job_folder(tmp_path: Path, data: Path, job_text: str, *, config_beside: bool = True) -> Path:
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "data").symlink_to(data, target_is_directory=True)
    (folder / "resources.yaml").write_text(RESOURCES)
    (folder / "job-platoconfig.yaml").write_text(job_text)
    if config_beside:
        shutil.copy(CONFIG, folder / "sdd_rcnn.yml")
    return folder


def assert_mistnet_job_succeeded(result, workdir: Path) -> dict:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "succeeded", summary
    assert {w["exit_code"] for w in summary["workers"].values()} == {0}, summary["workers"]
    trainer_log = (workdir / "trainer-1" / "worker.log").read_text()
    assert "MistNet features of" in trainer_log, trainer_log[-3000:]
    model_path = Path(summary["model_url"])
    assert model_path.is_file(), summary
    assert model_path.name == "sdd.pt"
    metrics = json.loads((model_path.parent / "metrics.json").read_text())
    assert metrics["algorithm"] == "mistnet" and metrics["cut_layer"] == 4 and metrics["epsilon"] == 100
    assert set(metrics["uploaded_bytes"]) == {DATASET}, metrics
    return summary


def test_the_placeholder_name_edgeX_is_refused_as_kubernetes_would(tmp_path: Path, shapes_data: Path) -> None:
    text = JOB.read_text().replace("$CLOUD_NODE", "cloud").replace("$EDGE1_NODE", "edge1")
    folder = job_folder(tmp_path, shapes_data, text)
    (folder / "resources.yaml").write_text(RESOURCES.replace(DATASET, "edgeX-surface-defect-detection-dataset"))

    result = run_job(folder, tmp_path / "run")

    assert result.returncode == 2
    assert "metadata.name 'edgeX-surface-defect-detection-dataset'; give it a name of lowercase letters" in result.stderr


@pytest.mark.slow  # the config's 500 MistNet back epochs on the aggregator: 2-7 min on 2 shared cores
def test_the_proposals_job_runs_its_config_beside_the_manifests(tmp_path: Path, shapes_data: Path) -> None:
    text = JOB.read_text()
    assert 'url: "sdd_rcnn.yml"' in text and "command" not in text
    folder = job_folder(tmp_path, shapes_data, substituted(text))
    workdir = tmp_path / "run"

    result = run_job(folder, workdir)

    assert_mistnet_job_succeeded(result, workdir)


def with_s3_credentials(job_text: str, endpoint: str) -> str:
    """Every container's env gets the S3 endpoint and keys, as a user's pods reaching their S3 would."""
    job = yaml.safe_load(job_text)
    spec = job["spec"]
    templates = [spec["aggregationWorker"]["template"]] + [w["template"] for w in spec["trainingWorkers"]]
    credentials = [
        {"name": "S3_ENDPOINT_URL", "value": endpoint},
        {"name": "ACCESS_KEY_ID", "value": ANY_ACCESS_KEY_ID},
        {"name": "SECRET_ACCESS_KEY", "value": ANY_SECRET_ACCESS_KEY},
    ]
    for template in templates:
        for container in template["spec"]["containers"]:
            container["env"] = [*(container.get("env") or []), *credentials]
    return yaml.safe_dump(job, sort_keys=False)


@pytest.mark.slow  # the config's 500 MistNet back epochs on the aggregator: 2-7 min on 2 shared cores
def test_the_proposals_job_runs_its_config_from_s3(
    tmp_path: Path, shapes_data: Path, s3_server, s3_client, s3_bucket
) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="sdd_rcnn.yml", Body=CONFIG.read_bytes())
    text = substituted(JOB.read_text())
    assert text.count('url: "sdd_rcnn.yml"') == 1
    text = text.replace('url: "sdd_rcnn.yml"', f'url: "s3://{s3_bucket}/sdd_rcnn.yml"')
    text = with_s3_credentials(text, s3_server.endpoint_url)
    folder = job_folder(tmp_path, shapes_data, text, config_beside=False)  # only the S3 copy exists
    workdir = tmp_path / "run"

    result = run_job(folder, workdir)

    assert_mistnet_job_succeeded(result, workdir)
    for worker in ("aggregator", "trainer-1"):
        log = (workdir / worker / "worker.log").read_text()
        assert ANY_SECRET_ACCESS_KEY not in log


@pytest.mark.slow  # the config's 500 MistNet back epochs on the aggregator: 2-7 min on 2 shared cores
def test_plain_plato_runs_sdd_rcnn_with_one_simulated_client(tmp_path: Path, shapes_data: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "data").symlink_to(shapes_data, target_is_directory=True)
    # the user's manifests: the resources and the job that names them (the Model by its aggregationWorker)
    (manifests / "resources.yaml").write_text(RESOURCES + "---\n" + substituted(JOB.read_text()))
    log = tmp_path / "plato.log"
    server = start_run(
        [sys.executable, "-m", "plato_sedna", "-c", str(CONFIG)],
        tmp_path,
        log,
        plain_env(
            TRAIN_DATASET_URL=str(shapes_data / "edge1" / "data.yaml"),
            PLATO_SEDNA_MANIFESTS=str(manifests / "resources.yaml"),
            MODEL_NAME="surface-defect-detection-model",
            DATASET_NAME=DATASET,
        ),
    )
    try:
        returncode = wait_run(server, timeout=600)
    finally:
        reap_clients(server)
    output = log.read_text()
    assert returncode == 0, output[-5000:]
    assert output.count("MistNet features of") == 1, output[-5000:]  # one simulated client uploaded once
