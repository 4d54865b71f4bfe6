"""The proposal's own files through `plato-sedna run`, as written (tests/data/upstream/proposal).

The discussion's FederatedLearningJob has no Plato config and containers with no command:
the config is built from the job (its stopCondition, aggregationTrigger and
transimitter_list) and the templates' env. The Datasets and the Model it names are the
user's cluster resources, written here over the quickstart's digits.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from test_quickstart_e2e import run_job

PROPOSAL = Path(__file__).parent / "data" / "upstream" / "proposal"

RESOURCES = """\
apiVersion: sedna.io/v1alpha1
kind: Dataset
metadata:
  name: edge1-surface-defect-detection-dataset
spec:
  url: data/edge1.txt
  format: txt
  nodeName: edge1
---
apiVersion: sedna.io/v1alpha1
kind: Dataset
metadata:
  name: edge2-surface-defect-detection-dataset
spec:
  url: data/edge2.txt
  format: txt
  nodeName: edge2
---
apiVersion: sedna.io/v1alpha1
kind: Model
metadata:
  name: surface-defect-detection-model
  annotations:
    plato.sedna.io/model-name: lenet5
spec:
  url: model/surface-defect.pth
  format: pth
"""


def _job_folder(tmp_path: Path, digits_data: Path, job_text: str) -> Path:
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "data").symlink_to(digits_data, target_is_directory=True)
    (folder / "resources.yaml").write_text(RESOURCES)
    (folder / "job.yaml").write_text(job_text)
    return folder


def _without_mistnet_env(job_text: str) -> str:
    """The same job with the aggregator's MistNet entries taken out, as a user would."""
    job = yaml.safe_load(job_text)
    container = job["spec"]["aggregationWorker"]["template"]["spec"]["containers"][0]
    container["env"] = [entry for entry in container["env"] if entry["name"] == "batch_size"]
    return yaml.safe_dump(job, sort_keys=False)


def _summary(workdir: Path) -> dict:
    return json.loads((workdir / "summary.json").read_text())


@pytest.mark.slow  # a federated job of several rounds, about 60 s on 2 cores
def test_the_discussions_job_without_mistnet_runs_adaptive_freezing(tmp_path: Path, digits_data: Path) -> None:
    job_text = _without_mistnet_env((PROPOSAL / "job-crd-example.yaml").read_text())
    folder = _job_folder(tmp_path, digits_data, job_text)
    result = run_job(folder, tmp_path / "run")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    summary = _summary(tmp_path / "run")
    assert summary["status"] == "succeeded"
    assert summary["stop_reason"], summary
    aggregator_log = (tmp_path / "run" / "aggregator" / "worker.log").read_text()
    assert "waits for 6 ready trainers, but the job has 2" in aggregator_log
    assert "batch_size has no value" in output
    metrics = json.loads((tmp_path / "run" / "model" / "metrics.json").read_text())
    assert metrics["rounds"] == summary["rounds"] >= 1


def test_the_discussions_job_with_mistnet_runs_mistnet(tmp_path: Path, digits_data: Path) -> None:
    folder = _job_folder(tmp_path, digits_data, (PROPOSAL / "job-crd-example.yaml").read_text())
    result = run_job(folder, tmp_path / "run")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    summary = _summary(tmp_path / "run")
    assert summary["status"] == "succeeded"
    aggregator_log = (tmp_path / "run" / "aggregator" / "worker.log").read_text()
    assert "exchanges no weights" in aggregator_log  # the job's adaptive_freezing left out
    for trainer in ("trainer-1", "trainer-2"):
        assert "MistNet features of" in (tmp_path / "run" / trainer / "worker.log").read_text()
