"""Aggregator restart: a kill -9'd aggregator resumes from its last round; trainers reconnect."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import time
from pathlib import Path

import pytest
from support.processes import PLATO_SEDNA, start_run, wait_run
from support.workers import clean_env

from plato_sedna.servers import resume
from plato_sedna.servers.progress import RoundRecord

pytest_plugins = ("support.storage_fixtures",)

RUN_TIMEOUT_S = 400


def _record(round_number: int, job: str = "digits") -> resume.ResumeRecord:
    history = tuple(
        RoundRecord(round=n, accuracy=0.5 + n / 10, elapsed_s=1.5 * n, clients=2, loss=1.0 / n) for n in range(1, round_number + 1)
    )
    return resume.ResumeRecord(
        job=job, round=round_number, accuracy=history[-1].accuracy, weights="", weights_sha256="",
        history=history, trainer_ids={"digits-edge1": 1, "digits-edge2": 2},
    )


def _weights():
    import torch

    return {"layer.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3)}


def test_resume_record_round_trips_with_its_weights(tmp_path: Path) -> None:
    import torch

    resume.save_checkpoint(tmp_path, _record(2), _weights())
    resume.save_checkpoint(tmp_path, _record(3), _weights())  # the round-2 weights go

    checkpoint = resume.find_checkpoint(tmp_path, "digits")

    assert checkpoint is not None and checkpoint.location == str(tmp_path)
    assert checkpoint.record.round == 3
    assert [r.round for r in checkpoint.record.history] == [1, 2, 3]
    assert checkpoint.record.history == _record(3).history
    assert checkpoint.record.trainer_ids == {"digits-edge1": 1, "digits-edge2": 2}
    assert torch.equal(checkpoint.load_weights()["layer.weight"], _weights()["layer.weight"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resume-weights-0003.pth", "resume.json"]


def test_the_mirror_beside_the_model_is_used_when_the_local_folder_is_empty(tmp_path: Path) -> None:
    from plato_sedna.storage import Storage

    storage = Storage(tmp_path / "cache")
    files = resume.save_checkpoint(tmp_path / "local", _record(2), _weights())
    folder_url = resume.remote_folder(str(tmp_path / "models" / "net.pth"), "digits")
    resume.mirror_checkpoint(storage, folder_url, files)

    checkpoint = resume.find_checkpoint(tmp_path / "fresh-volume", "digits", storage, folder_url)

    assert folder_url == f"{tmp_path}/models/.plato-sedna-resume/digits"
    assert checkpoint is not None and checkpoint.location == folder_url and checkpoint.record.round == 2


def test_an_s3_mirror_keeps_only_the_newest_round(tmp_path: Path, storage, s3_bucket: str, s3_client) -> None:
    folder_url = resume.remote_folder(f"s3://{s3_bucket}/models/net.pth", "digits")
    for round_number in (2, 3):
        files = resume.save_checkpoint(tmp_path / "local", _record(round_number), _weights())
        resume.mirror_checkpoint(storage, folder_url, files)

    checkpoint = resume.find_checkpoint(tmp_path / "fresh-volume", "digits", storage, folder_url)

    keys = sorted(item["Key"] for item in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert keys == [f"models/.plato-sedna-resume/digits/{name}" for name in ("resume-weights-0003.pth", "resume.json")]
    assert checkpoint is not None and checkpoint.record.round == 3 and checkpoint.location == folder_url


def test_no_mirror_yet_means_a_fresh_start(tmp_path: Path, storage, s3_bucket: str) -> None:
    folder_url = resume.remote_folder(f"s3://{s3_bucket}/models/", "digits")

    assert resume.find_checkpoint(tmp_path, "digits", storage, folder_url) is None


@pytest.mark.parametrize(
    ("damage", "warning"),
    [
        (lambda folder: (folder / "resume.json").write_text("{not json"), "Ignoring the resume record"),
        (lambda folder: (folder / "resume-weights-0002.pth").write_bytes(b"truncated"), "does not match its checksum"),
        (lambda folder: (folder / "resume-weights-0002.pth").unlink(), "its weights cannot be read"),
        (lambda folder: resume.save_checkpoint(folder, _record(2, job="other-job"), _weights()), "it is job 'other-job'"),
    ],
    ids=["corrupt-record", "corrupt-weights", "missing-weights", "foreign-job"],
)
def test_a_corrupt_or_foreign_checkpoint_is_ignored_with_a_warning(tmp_path: Path, caplog, damage, warning) -> None:
    resume.save_checkpoint(tmp_path, _record(2), _weights())
    damage(tmp_path)

    with caplog.at_level(logging.WARNING, logger="plato_sedna.servers.resume"):
        assert resume.find_checkpoint(tmp_path, "digits") is None

    assert warning in caplog.text and "starting the job afresh" in caplog.text


def test_a_finished_run_is_not_resumed(tmp_path: Path) -> None:
    from dataclasses import replace

    resume.save_checkpoint(tmp_path, replace(_record(4), final=True), _weights())

    assert resume.find_checkpoint(tmp_path, "digits") is None


def _mirrored(tmp_path: Path, storage, folder_url: str, record: resume.ResumeRecord) -> None:
    """Checkpoint ``record`` and mirror it, as the aggregator does (a final one as it closes)."""
    from dataclasses import replace

    files = resume.save_checkpoint(tmp_path / "local", replace(record, final=False), _weights())
    if record.final:
        written = resume.ResumeRecord.from_json(files[1].read_bytes())
        files[1].write_bytes(replace(written, final=True, stop_reason=record.stop_reason).to_json())
    resume.mirror_checkpoint(storage, folder_url, files)


def _away_trainer(storage, folder_url: str, connect_timeout_s: float):
    """A trainer welcomed by run ``run-a`` whose aggregator is gone: it runs its reconnect loop."""
    import asyncio
    import socket
    from types import SimpleNamespace

    from plato_sedna.clients.connection import AggregatorAddress, TrainerSession

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = SimpleNamespace(_composable=SimpleNamespace(context=SimpleNamespace()))  # never reached
    session = TrainerSession(
        client, "digits-edge2", 2, final_record=lambda run_id: resume.final_record(storage, folder_url, run_id)
    )
    session.run_id = "run-a"  # as the aggregator's welcome set it
    return asyncio.run(session.run(AggregatorAddress(("127.0.0.1",), port), connect_timeout_s))


def test_a_trainer_away_as_the_job_ended_exits_from_the_final_record(tmp_path: Path, storage, s3_bucket: str) -> None:
    from dataclasses import replace

    folder_url = resume.remote_folder(f"s3://{s3_bucket}/models/net.pth", "digits")
    _mirrored(tmp_path, storage, folder_url, replace(_record(2), run_id="run-a", final=True, stop_reason="rounds >= 2"))

    started = time.monotonic()
    assert _away_trainer(storage, folder_url, connect_timeout_s=120) == "rounds >= 2"
    assert time.monotonic() - started < 30  # at its first failed reconnect, not at the timeout


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(None, id="no-record"),
        pytest.param({"run_id": "run-a", "final": False}, id="the-run-goes-on"),
        pytest.param({"run_id": "run-b", "final": True}, id="another-runs-final-record"),
    ],
)
def test_a_trainer_away_keeps_reconnecting_unless_its_run_ended(tmp_path: Path, storage, s3_bucket: str, record) -> None:
    from dataclasses import replace

    from plato_sedna.errors import JobFailed

    folder_url = resume.remote_folder(f"s3://{s3_bucket}/models/net.pth", "digits")
    if record is not None:
        _mirrored(tmp_path, storage, folder_url, replace(_record(2), **record))

    with pytest.raises(JobFailed, match="did not accept a connection within 3 s"):
        _away_trainer(storage, folder_url, connect_timeout_s=3)


def _aggregator_pid(folder: Path) -> int:
    """The aggregator process `plato-sedna run` started in ``folder`` (its cwd)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) == folder and b"plato" in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except OSError:
            continue
    raise AssertionError(f"no aggregator process runs in {folder}")


def _wait_for_checkpoint(checkpoints: Path, round_number: int, run, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert run.poll() is None, "plato-sedna run ended before the aggregator checkpointed"
        try:
            if json.loads((checkpoints / resume.RECORD_NAME).read_text())["round"] >= round_number:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"no round-{round_number} resume record in {checkpoints} within {timeout_s} s")


def _wait_for_text(log: Path, text: str, run, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in log.read_text(errors="replace"):
        assert run.poll() is None and time.monotonic() < deadline, f"{text!r} not in {log}"
        time.sleep(0.05)


@pytest.mark.slow  # about 2.5 minutes on a loaded 2-core machine: two aggregator start-ups
def test_a_killed_aggregator_is_restarted_and_the_job_runs_exactly_its_rounds(quickstart_job: Path, tmp_path: Path) -> None:
    text = quickstart_job.read_text()
    text = text.replace('value: "10"', 'value: "4"\n              - name: target_accuracy\n                value: "1.0"')
    text = text.replace("nodeName: cloud", "nodeName: cloud\n        restartPolicy: OnFailure")
    text = text.replace('name: epochs\n                  value: "2"', 'name: epochs\n                  value: "1"')
    quickstart_job.write_text(text)
    workdir, log = tmp_path / "run", tmp_path / "run.log"
    command = [*PLATO_SEDNA, "run", str(quickstart_job), "--workdir", str(workdir), "--timeout", str(RUN_TIMEOUT_S)]
    run = start_run(command, tmp_path, log, clean_env())

    _wait_for_checkpoint(workdir / "aggregator" / "runtime" / "checkpoints", 2, run)
    _wait_for_text(workdir / "trainer-1" / "worker.log", "Started training in communication round #3", run)
    os.kill(_aggregator_pid(workdir / "aggregator"), signal.SIGKILL)  # round 3 is being trained

    assert wait_run(run, RUN_TIMEOUT_S + 60) == 0, log.read_text()[-6000:]
    output = log.read_text()
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "succeeded" and summary["rounds"] == 4 and summary["stop_reason"] == "rounds"
    assert summary["workers"]["aggregator"]["restarts"] == 1
    assert {key: w["exit_code"] for key, w in summary["workers"].items()} == dict.fromkeys(summary["workers"], 0)
    assert re.search(r"worker aggregator \(aggworker-\w+\) was killed by SIGKILL; .*; restarting it \(restart 1 of at most", output)

    aggregator_log = (workdir / "aggregator" / "worker.log").read_text()
    resumed = re.findall(r"Resuming job digits-fedavg from round (\d+)", aggregator_log)
    assert len(resumed) == 1 and int(resumed[0]) >= 2
    metrics = json.loads((workdir / "model" / "metrics.json").read_text())
    assert [r["round"] for r in metrics["history"]] == [1, 2, 3, 4]
    assert metrics["rounds"] == 4
    for trainer in ("trainer-1", "trainer-2"):
        trainer_log = (workdir / trainer / "worker.log").read_text()
        assert "Lost the link to the aggregator" in trainer_log
        assert trainer_log.count("Connected to the aggregator at") == 2


@pytest.mark.slow  # about a minute per case on a loaded 2-core machine
@pytest.mark.parametrize(
    "planted_round", [2, pytest.param(3, marks=pytest.mark.extended)], ids=["resumes-from-the-mirror", "finishes-at-once"]
)
def test_an_aggregator_on_a_fresh_volume_resumes_from_the_mirror_beside_the_model(
    tmp_path: Path, digits_data: Path, planted_round: int
) -> None:
    """As in a pod whose container restarted without a checkpoint volume: MODEL_URL's folder has the record."""
    from conftest import QUICKSTART
    from plato.models import lenet5
    from support.workers import (
        aggregator_env,
        free_port,
        start_plato,
        stop,
        trainer_env,
    )

    model_url = tmp_path / "out" / "model.pth"
    files = resume.save_checkpoint(
        tmp_path / "old-volume", _record(planted_round), lenet5.Model(num_classes=10).state_dict()
    )
    resume.mirror_checkpoint(_local_storage(tmp_path), resume.remote_folder(str(model_url), "digits"), files)
    port, config = free_port(), QUICKSTART / "fedavg.toml"
    aggregator = start_plato(
        config, tmp_path / "aggregator",
        aggregator_env(port, 2, model_url, digits_data / "test.txt", rounds="3", target_accuracy="1.0"),
    )
    trainers = [
        start_plato(config, tmp_path / edge, trainer_env(port, 2, f"digits-{edge}", digits_data / f"{edge}.txt", epochs="1"))
        for edge in ("edge1", "edge2")
    ]
    try:
        assert aggregator.wait(RUN_TIMEOUT_S) == 0
        assert [trainer.wait(60) for trainer in trainers] == [0, 0]
    finally:
        stop(aggregator, *trainers)

    log = (tmp_path / "aggregator" / "worker.log").read_text()
    assert f"Resuming job digits from round {planted_round} (checkpoint at {model_url.parent}/.plato-sedna-resume/digits" in log
    assert re.findall(r"Starting round (\d)/", log) == [str(n) for n in range(planted_round + 1, 4)]
    metrics = json.loads((model_url.parent / "metrics.json").read_text())
    assert [r["round"] for r in metrics["history"]] == [1, 2, 3] and metrics["stop_reason"] == "rounds"
    assert "Trainer digits-edge1 is client #1" in log and "Trainer digits-edge2 is client #2" in log


def _local_storage(tmp_path: Path):
    from plato_sedna.storage import Storage

    return Storage(tmp_path / "cache")


def test_a_worker_is_restarted_only_as_its_restart_policy_allows_and_a_bounded_number_of_times(tmp_path: Path) -> None:
    import yaml
    from test_local_runner import fake_job, run

    from plato_sedna.local.runner import MAX_RESTARTS

    path = fake_job(tmp_path / "job", {}, {"FAKE_EXIT": "3"}, {"FAKE_SLEEP": "30"})
    documents = list(yaml.safe_load_all(path.read_text()))
    documents[-1]["spec"]["trainingWorkers"][0]["template"]["spec"]["restartPolicy"] = "OnFailure"
    path.write_text(yaml.safe_dump_all(documents))

    code, output, summary, _ = run(path, tmp_path / "run")

    assert code == 1 and summary["status"] == "failed" and summary["error"].startswith("worker trainer-1")
    assert {key: worker["restarts"] for key, worker in summary["workers"].items()} == {
        "aggregator": 0, "trainer-1": MAX_RESTARTS, "trainer-2": 0,
    }
    assert output.count("restartPolicy OnFailure") == MAX_RESTARTS
    log = (tmp_path / "run" / "trainer-1" / "worker.log").read_text()
    assert log.count("failing on purpose") == MAX_RESTARTS + 1  # the log is kept across restarts
