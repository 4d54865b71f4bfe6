"""A job that tested nothing reports no accuracy: null and "not tested", never 0.0, in
metrics.json, the progress line, summary.json and the trainers' LocalController reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from plato_sedna.local.runner import Progress
from plato_sedna.servers.progress import NOT_TESTED, JobProgress, RoundRecord, reported_accuracy
from plato_sedna.status import TrainerProgress


def test_an_untested_round_has_no_accuracy_in_metrics_and_the_progress_line(capsys) -> None:
    progress = JobProgress(rounds_planned=1)
    record = RoundRecord(round=1, accuracy=reported_accuracy(None), elapsed_s=1.5, clients=2)
    progress.history.append(record)

    metrics = progress.metrics()
    progress.announce(record)

    assert metrics["accuracy"] is None and metrics["tested_on"] == NOT_TESTED
    assert metrics["history"][0]["accuracy"] is None
    line = capsys.readouterr().out
    assert json.loads(line.split(" ", 1)[1])["accuracy"] is None
    parsed = Progress.parse(line)
    assert parsed.accuracy is None and "accuracy" not in parsed.describe()


def test_a_tested_round_keeps_its_accuracy_and_says_nothing_more() -> None:
    progress = JobProgress(rounds_planned=1)
    progress.history.append(RoundRecord(round=1, accuracy=reported_accuracy(0), elapsed_s=1.0, clients=1))

    assert progress.metrics()["accuracy"] == 0.0 and "tested_on" not in progress.metrics()


def test_trainers_report_no_accuracy_to_the_local_controller() -> None:
    trainer = TrainerProgress(None)
    trainer.aggregator_reported(None)  # the global_accuracy / job-done accuracy of an untested job

    assert trainer.metrics == {} and trainer.aggregator_accuracy is None


# One MistNet detector round with no TEST_DATASET_URL on the aggregator (the lenet5 MistNet
# always measures something: the aggregator's test set, held-out or training features).


@pytest.mark.slow
def test_mistnet_detector_without_a_test_set_reports_not_tested(tmp_path: Path) -> None:
    import torch
    from test_quickstart_e2e import run_job
    from test_yolov5_mistnet import IMAGE_SIZE, mistnet_demo_job, prepare_shapes, yolov5n

    from plato_sedna.models import yolo

    data = tmp_path / "shapes"
    prepare_shapes(data, per_edge=8, val=4, side=IMAGE_SIZE)
    pretrained = tmp_path / "front.pt"
    torch.save(yolo.checkpoint_of(yolov5n()), pretrained)
    job = mistnet_demo_job(tmp_path / "job", data, pretrained, epochs=1)
    documents = list(yaml.safe_load_all(job.read_text()))
    spec = next(d for d in documents if d["kind"] == "FederatedLearningJob")["spec"]
    for container in spec["aggregationWorker"]["template"]["spec"]["containers"]:
        container["env"] = [v for v in container.get("env", []) if v["name"] != "TEST_DATASET_URL"]
    job.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    workdir = tmp_path / "run"

    result = run_job(job, workdir)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = json.loads((workdir / "summary.json").read_text())
    metrics = json.loads((Path(summary["model_url"]).parent / "metrics.json").read_text())
    assert summary["status"] == "succeeded" and summary["rounds"] == 1
    assert summary["accuracy"] is None and summary["tested_on"].startswith("not tested")
    assert metrics["accuracy"] is None and metrics["tested_on"].startswith("not tested (no test set")
    assert metrics["history"][0]["accuracy"] is None
    assert "accuracy: not tested" in result.stdout and "accuracy 0.0000" not in result.stdout
    log = (workdir / "aggregator" / "worker.log").read_text()
    progress_lines = [line for line in log.splitlines() if "PLATO_SEDNA_PROGRESS" in line]
    assert progress_lines and all('"accuracy": null' in line for line in progress_lines)
