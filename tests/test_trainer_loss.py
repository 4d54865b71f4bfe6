"""Trainer loss: a trainer killed mid-round does not stall the job, and rejoins as itself."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from support.processes import (
    PLATO_SEDNA,
    _group_alive,
    _kill_group,
    plain_env,
    start_run,
    wait_run,
)
from support.workers import wait_for_text

from plato_sedna.context import SednaContext
from plato_sedna.errors import ConfigError
from plato_sedna.servers.trainer_loss import TrainerLossPolicy

ROUNDS = 4
RUN_TIMEOUT_S = 400


def test_policy_values_are_checked_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"server\.on_trainer_loss = 'retry'.*continue, wait"):
        TrainerLossPolicy("retry", 10)
    with pytest.raises(ConfigError, match=r"server\.trainer_timeout = 0 .*positive"):
        TrainerLossPolicy("continue", 0)
    with pytest.raises(ConfigError, match=r"server\.trainer_timeout = 'soon'"):
        TrainerLossPolicy("wait", "soon")
    assert TrainerLossPolicy() == TrainerLossPolicy("continue", 300.0)


def test_policy_env_values_are_parsed_or_named() -> None:
    parsed = SednaContext.from_env({"TRAINER_TIMEOUT": "2.5", "on_trainer_loss": "WAIT"}).hyperparameters
    assert parsed == {"trainer_timeout": 2.5, "on_trainer_loss": "wait"}
    with pytest.raises(ConfigError, match="on_trainer_loss='later'.*continue, wait"):
        SednaContext.from_env({"on_trainer_loss": "later"})
    with pytest.raises(ConfigError, match="trainer_timeout='-1'"):
        SednaContext.from_env({"trainer_timeout": "-1"})


def _job_with_trainer_loss(job_yaml: Path, **aggregator_env: str) -> None:
    """The quickstart with ROUNDS rounds, the given aggregator env, and trainers restarted OnFailure."""
    documents = list(yaml.safe_load_all(job_yaml.read_text()))
    spec = next(doc for doc in documents if doc["kind"] == "FederatedLearningJob")["spec"]
    container = spec["aggregationWorker"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    env |= {"rounds": str(ROUNDS), "target_accuracy": "1.0", **aggregator_env}
    container["env"] = [{"name": name, "value": value} for name, value in env.items()]
    for worker in spec["trainingWorkers"]:
        worker["template"]["spec"]["restartPolicy"] = "OnFailure"
    job_yaml.write_text(yaml.safe_dump_all(documents))


def _worker_pid(folder: Path) -> int:
    """The process `plato-sedna run` started in ``folder`` (the leader of its own session)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if Path(os.readlink(entry / "cwd")) == folder and os.getsid(pid) == pid:
                return pid
        except OSError:
            continue
    raise AssertionError(f"no worker process runs in {folder}")


def _run_killing_in_round_2(job_yaml: Path, tmp_path: Path, victim: int | None = None) -> tuple[Path, dict, int]:
    """Run the job, kill -9 trainer-``victim`` (default: the one round 2 selects) while it trains round 2.

    Returns the workdir, summary.json and the victim's number.

    Once round 2 is aggregated the other trainer is held (a slow node) until the
    restarted victim is back, so that the later rounds may have it again.
    """
    workdir, output = tmp_path / "run", tmp_path / "run.log"
    command = [*PLATO_SEDNA, "run", str(job_yaml), "--workdir", str(workdir), "--timeout", str(RUN_TIMEOUT_S)]
    run = start_run(command, tmp_path, output, plain_env())
    survivor = None
    try:
        victim = victim or _trainer_selected_in_round_2(workdir / "aggregator" / "worker.log", run)
        wait_for_text(workdir / f"trainer-{victim}" / "worker.log", "Started training in communication round #2", 300, run)
        os.kill(_worker_pid(workdir / f"trainer-{victim}"), signal.SIGKILL)
        wait_for_text(output, f"\nround 2/{ROUNDS}  accuracy", 60, run)  # the runner's progress line
        survivor = _worker_pid(workdir / f"trainer-{3 - victim}")
        os.killpg(survivor, signal.SIGSTOP)
        _wait_for_count(workdir / "aggregator" / "worker.log", f"Trainer digits-edge{victim} is client #", 2, run)
        os.killpg(survivor, signal.SIGCONT)
        assert wait_run(run, RUN_TIMEOUT_S) == 0, output.read_text()[-4000:]
    finally:
        if survivor is not None and _group_alive(survivor):
            os.killpg(survivor, signal.SIGCONT)
        if run.poll() is None:  # the runner stops its workers on SIGTERM
            run.terminate()
            try:
                run.wait(30)
            finally:
                _kill_group(run.pid)
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "succeeded" and summary["rounds"] == ROUNDS
    assert summary["workers"][f"trainer-{victim}"]["restarts"] == 1
    assert {worker["exit_code"] for worker in summary["workers"].values()} == {0}
    return workdir, summary, victim


def _trainer_selected_in_round_2(aggregator_log: Path, run: subprocess.Popen) -> int:
    wait_for_text(aggregator_log, "Starting round 2/", 300, run)
    wait_for_text(aggregator_log, "Selecting client #", 30, run)
    log = aggregator_log.read_text()
    client_id = re.search(r"Selecting client #(\d) for training", log[log.index("Starting round 2/"):]).group(1)
    return int(re.search(rf"Trainer digits-edge(\d) is client #{client_id}\b", log).group(1))


def _rejoined_with_the_same_id(aggregator_log: str, victim: int) -> int:
    ids = re.findall(rf"Trainer digits-edge{victim} is client #(\d)", aggregator_log)
    assert len(ids) == 2 and ids[0] == ids[1], ids
    return int(ids[0])


def _events(summary: dict) -> list[tuple[str, int, int]]:
    return [(event["event"], event["client_id"], event["round"]) for event in summary["trainer_events"]]


@pytest.mark.slow
def test_a_trainer_killed_mid_round_is_left_behind_then_rejoins(quickstart_job: Path, tmp_path: Path) -> None:
    _job_with_trainer_loss(quickstart_job, trainer_timeout="1", on_trainer_loss="continue")
    workdir, summary, _ = _run_killing_in_round_2(quickstart_job, tmp_path, victim=2)

    log = (workdir / "aggregator" / "worker.log").read_text()
    lost_id = _rejoined_with_the_same_id(log, victim=2)
    events = _events(summary)
    assert events[:2] == [("lost", lost_id, 2), ("dropped", lost_id, 2)], events
    assert [(name, cid) for name, cid, _ in events[2:]] == [("rejoined", lost_id)], events
    assert summary["trainer_events"][0]["during_round"] is True

    history = json.loads((workdir / "model" / "metrics.json").read_text())["history"]
    assert [record["round"] for record in history] == list(range(1, ROUNDS + 1))
    assert history[1]["missing"] == [lost_id] and history[1]["lost"] == [lost_id] and history[1]["clients"] == 1
    assert history[0]["missing"] == [] and history[0]["clients"] == 2
    assert history[-1]["missing"] == [] and history[-1]["clients"] == 2  # both train again
    assert "lost for more than 1 s; the round goes on with 1 update(s)" in log


@pytest.mark.slow
@pytest.mark.extended
def test_a_round_whose_only_trainer_is_lost_goes_to_a_free_one(quickstart_job: Path, tmp_path: Path) -> None:
    _job_with_trainer_loss(quickstart_job, trainer_timeout="1", on_trainer_loss="continue", per_round="1")
    # per_round = 1: round 2 goes to one trainer, the one this test kills.
    workdir, summary, victim = _run_killing_in_round_2(quickstart_job, tmp_path)

    log = (workdir / "aggregator" / "worker.log").read_text()
    lost_id = _rejoined_with_the_same_id(log, victim)
    assert _events(summary)[:2] == [("lost", lost_id, 2), ("dropped", lost_id, 2)], summary["trainer_events"]
    history = json.loads((workdir / "model" / "metrics.json").read_text())["history"]
    assert history[1]["missing"] == [lost_id] and history[1]["clients"] == 1  # trained by the other one
    assert re.search(r"Round 2: nobody was training it; it goes to trainer\(s\) \[\d\]", log)


def _wait_for_count(log: Path, text: str, count: int, run: subprocess.Popen, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while not log.exists() or log.read_text(errors="replace").count(text) < count:
        assert run.poll() is None and time.monotonic() < deadline, f"{text!r} not {count} times in {log}"
        time.sleep(0.2)
