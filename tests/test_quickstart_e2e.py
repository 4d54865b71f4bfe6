"""The quickstart job end to end through `plato-sedna run`: separate processes over real sockets."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from support.processes import PLATO_SEDNA
from support.workers import clean_env

RUN_TIMEOUT_S = 600


def run_job(job_yaml: Path, workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PLATO_SEDNA,
         "run", str(job_yaml), "--workdir", str(workdir), "--timeout", str(RUN_TIMEOUT_S), *extra],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S + 60,
    )


def trainer_ids(aggregator_log: str) -> set[str]:
    """Each edge's dataset name maps to one logical client id, the ids distinct."""
    ids = dict(re.findall(r"Trainer digits-edge(\d) is client #(\d)", aggregator_log))
    assert set(ids) == {"1", "2"}, ids
    return set(ids.values())


def test_quickstart_reaches_090_and_publishes_a_loadable_model(quickstart_job: Path, tmp_path: Path) -> None:
    import torch
    from plato.models import lenet5

    workdir = tmp_path / "run"
    result = run_job(quickstart_job, workdir)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "succeeded"
    assert summary["accuracy"] >= 0.90
    assert 1 <= summary["rounds"] <= 10
    assert summary["stop_reason"] in ("rounds", "target_accuracy")
    assert summary["elapsed_s"] > 0
    assert {w["exit_code"] for w in summary["workers"].values()} == {0}
    assert set(summary["workers"]) == {"aggregator", "trainer-1", "trainer-2"}

    model_path = Path(summary["model_url"])
    assert model_path == workdir / "model" / "digits-lenet5.pth"
    model = lenet5.Model(num_classes=10)
    model.load_state_dict(torch.load(model_path, weights_only=True))  # strict: names and shapes
    metrics = json.loads((model_path.parent / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(summary["accuracy"])
    assert [r["round"] for r in metrics["history"]] == list(range(1, summary["rounds"] + 1))
    assert all(r["bytes_sent"] > 100_000 and r["bytes_received"] > 100_000 for r in metrics["history"])

    from PIL import Image

    with Image.open(summary["plot"]) as plot:  # accuracy and loss per round, beside summary.json
        assert plot.format == "PNG" and Path(summary["plot"]).parent == workdir

    assert f"round {summary['rounds']}/10" in result.stdout
    assert "[trainer-1] " in result.stdout and "[aggregator] " in result.stdout
    assert trainer_ids((workdir / "aggregator" / "worker.log").read_text()) == {"1", "2"}


@pytest.mark.slow  # a full job run; the default suite keeps one of each kind (CI runs -m slow too)
def test_each_worker_as_pid_1_like_in_containers(quickstart_job: Path, tmp_path: Path) -> None:
    """Every process is PID 1 of its own PID namespace: Plato's PID keys would collide."""
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare needs root here: {probe.stderr.decode().strip()}")
    fast = quickstart_job.read_text().replace('value: "10"', 'value: "2"')
    quickstart_job.write_text(fast)
    workdir = tmp_path / "run"

    result = run_job(quickstart_job, workdir, "--isolate-pids")

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "succeeded" and summary["rounds"] == 2
    aggregator_log = (workdir / "aggregator" / "worker.log").read_text()
    assert "[Server #1]" in aggregator_log  # the aggregator really ran as PID 1
    assert trainer_ids(aggregator_log) == {"1", "2"}
    for trainer in ("trainer-1", "trainer-2"):
        assert "Connected to the aggregator" in (workdir / trainer / "worker.log").read_text()
