"""Tests for plato_sedna.local.runner and command: real processes running a fake worker."""

import io
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from plato_sedna.errors import ResourceError
from plato_sedna.local.command import main
from plato_sedna.local.isolation import mount_namespaces
from plato_sedna.local.manifests import load_job
from plato_sedna.local.runner import Progress, run_job

DATA = Path(__file__).parent / "data" / "local"
FAKE_JOB = DATA / "fake-job.yaml"
REPO = Path(__file__).resolve().parents[1]
KEYS = ("aggregator", "trainer-1", "trainer-2")
RUNNER = "import sys; from plato_sedna.local.command import main; sys.exit(main(sys.argv[1:]))"


def fake_job(
    folder: Path, aggregator: dict[str, str] | None = None, *trainers: dict[str, str]
) -> Path:
    """fake-job.yaml plus env per worker, written to folder beside a copy of fake_worker.py."""
    documents = list(yaml.safe_load_all(FAKE_JOB.read_text()))
    spec = documents[-1]["spec"]
    templates = [spec["aggregationWorker"], *spec["trainingWorkers"]]
    for template, extra in zip(templates, [aggregator or {}, *trainers], strict=False):
        container = template["template"]["spec"]["containers"][0]
        container["env"] += [{"name": name, "value": value} for name, value in extra.items()]
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / "fake_worker.py", folder)
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return path


def run(path: Path, workdir: Path, **options: Any) -> tuple[int, str, dict[str, Any], float]:
    """Run the job in-process: exit code, printed output, summary and seconds taken."""
    out = io.StringIO()
    started = time.monotonic()
    code = run_job(load_job(path), workdir=workdir, out=out, **options)
    elapsed = time.monotonic() - started
    return code, out.getvalue(), json.loads((workdir / "summary.json").read_text()), elapsed


def alive(pid: int) -> bool:
    """Whether pid is a live process (a zombie awaiting its reaper is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def recorded_pids(workdir: Path) -> list[int]:
    return [int(p.read_text()) for p in sorted(workdir.glob("*/*pid"))]


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_successful_job(tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    code, output, summary, _ = run(FAKE_JOB, workdir)

    assert code == 0
    lines = output.splitlines()
    assert "[trainer-1] trained on edge1" in lines
    assert "[trainer-2] a line on stderr" in lines
    assert "[aggregator] aggregating updates from edge1 edge2" in lines
    assert lines.index("round 1/2  accuracy 0.5000  (0.1 s)") < lines.index(
        "round 2/2  accuracy 0.9567  (0.2 s)"
    )
    assert "PLATO_SEDNA_PROGRESS" not in output
    model = workdir / "models" / "fake.pth"
    assert lines[-1] == (
        "job default/fake-fl succeeded: 2 rounds, accuracy 0.9567, "
        f"model {model}, summary {workdir / 'summary.json'}"
    )

    assert {
        k: summary[k]
        for k in ("job", "status", "rounds", "accuracy", "model_url", "stop_reason", "error")
    } == {
        "job": "default/fake-fl",
        "status": "succeeded",
        "rounds": 2,
        "accuracy": 0.9567,
        "model_url": str(model),
        "stop_reason": "rounds reached",
        "error": None,
    }
    assert summary["elapsed_s"] > 0
    assert list(summary["workers"]) == list(KEYS)
    for key, worker in summary["workers"].items():
        env = json.loads((workdir / key / "env.json").read_text())
        assert worker == {
            "worker_name": env["WORKER_NAME"],
            "exit_code": 0,
            "restarts": 0,
            "node": {"aggregator": None, "trainer-1": "edge-node-1", "trainer-2": "edge-node-2"}[key],
            "log": str(workdir / key / "worker.log"),
        }
    assert sorted(p.name for p in workdir.iterdir()) == [
        "aggregator",
        "models",
        "progress.png",
        "summary.json",
        "trainer-1",
        "trainer-2",
    ]
    assert summary["plot"] == str(workdir / "progress.png")


def test_workers_get_their_own_folder_log_and_loopback_env(tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    _, _, summary, _ = run(FAKE_JOB, workdir)

    aggregator = json.loads((workdir / "aggregator" / "env.json").read_text())
    # The GM's AGG_IP (the Service name) where each worker gets its own /etc/hosts naming it.
    agg_ip = "fake-fl-aggregation.default" if mount_namespaces().available else "127.0.0.1"
    assert summary["agg_ip"] == agg_ip
    for key in ("trainer-1", "trainer-2"):
        env = json.loads((workdir / key / "env.json").read_text())
        assert (env["AGG_IP"], env["AGG_PORT"]) == (agg_ip, aggregator["AGG_BIND_PORT"])
        assert env["PYTHONUNBUFFERED"] == "1"
        assert "trained on" in (workdir / key / "worker.log").read_text()
    log = (workdir / "aggregator" / "worker.log").read_text()
    assert 'PLATO_SEDNA_PROGRESS {"round": 2' in log  # the log keeps the raw line


def test_a_rerun_does_not_report_the_previous_runs_model(tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    assert run(fake_job(tmp_path / "ok"), workdir)[0] == 0
    failing = fake_job(tmp_path / "failing", {}, {"FAKE_EXIT": "3"})
    code, _, summary, _ = run(failing, workdir)
    assert code == 1
    assert (summary["model_url"], summary["rounds"], summary["accuracy"]) == (None, None, None)


def test_a_failing_trainer_fails_the_job_and_stops_everything(tmp_path: Path) -> None:
    path = fake_job(
        tmp_path / "job",
        {},
        {"FAKE_EXIT": "3", "FAKE_SLEEP": "1"},
        {"FAKE_SLEEP": "30", "FAKE_GRANDCHILD": "1"},
    )
    workdir = tmp_path / "run"
    code, output, summary, elapsed = run(path, workdir)

    assert code == 1
    assert elapsed < 8
    assert summary["status"] == "failed"
    log = workdir / "trainer-1" / "worker.log"
    name = summary["workers"]["trainer-1"]["worker_name"]
    assert summary["error"] == f"worker trainer-1 ({name}) exited with code 3; log {log}"
    assert summary["workers"]["trainer-1"]["exit_code"] == 3
    assert summary["workers"]["aggregator"]["exit_code"] == -signal.SIGTERM
    assert "[trainer-1] failing on purpose" in output
    assert output.splitlines()[-1].startswith(
        f"job default/fake-fl failed: worker trainer-1 ({name}) exited"
    )
    pids = recorded_pids(workdir)
    assert len(pids) == 4  # three workers and trainer-2's child
    assert not any(alive(pid) for pid in pids)


def test_a_trainer_still_running_after_the_aggregator_is_stopped_after_grace(
    tmp_path: Path,
) -> None:
    path = fake_job(tmp_path / "job", {}, {}, {"FAKE_SLEEP": "30"})
    workdir = tmp_path / "run"
    code, _, summary, elapsed = run(path, workdir, grace=1.0)

    assert code == 1
    assert elapsed < 8
    assert summary["error"].startswith("trainer-2 still running 1 s after the aggregator exited 0")
    assert summary["workers"]["aggregator"]["exit_code"] == 0
    assert summary["workers"]["trainer-2"]["exit_code"] == -signal.SIGTERM
    assert summary["model_url"] == str(
        workdir / "models" / "fake.pth"
    )  # published before the failure
    assert not any(alive(pid) for pid in recorded_pids(workdir))


def test_timeout_stops_the_job(tmp_path: Path) -> None:
    path = fake_job(tmp_path / "job", {"FAKE_SLEEP": "30"})
    code, _, summary, elapsed = run(path, tmp_path / "run", timeout=1.5)

    assert code == 1
    assert elapsed < 8
    assert summary["error"] == "timed out after 1.5 s; stopped aggregator"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_interrupts_the_run_and_leaves_no_process(
    tmp_path: Path, signum: signal.Signals
) -> None:
    slow = {"FAKE_SLEEP": "30"}
    path = fake_job(tmp_path / "job", slow, {**slow, "FAKE_GRANDCHILD": "1"}, slow)
    workdir = tmp_path / "run"
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(path), "--workdir", str(workdir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(list(workdir.glob("*/*pid"))) == 4)
        runner.send_signal(signum)
        stdout, _ = runner.communicate(timeout=15)
    finally:
        runner.kill()

    assert runner.returncode == 130
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["error"] == f"interrupted by {signum.name}; stopped every worker"
    assert stdout.splitlines()[-1].startswith("job default/fake-fl interrupted:")
    assert not any(alive(pid) for pid in recorded_pids(workdir))


def _pid_namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "true"]
    return subprocess.run(probe, capture_output=True).returncode == 0


@pytest.mark.skipif(not _pid_namespaces_work(), reason="needs root and util-linux unshare")
def test_isolate_pids_makes_every_worker_pid_1(tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    code, _, summary, _ = run(FAKE_JOB, workdir, isolate_pids=True)
    assert (code, summary["status"]) == (0, "succeeded")
    assert recorded_pids(workdir) == [1, 1, 1]


def test_an_unrunnable_command_fails_before_anything_starts(tmp_path: Path) -> None:
    documents = list(yaml.safe_load_all(FAKE_JOB.read_text()))
    documents[-1]["spec"]["trainingWorkers"][1]["template"]["spec"]["containers"][0]["command"] = [
        "bash",
        "x.sh",
    ]
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    shutil.copy(DATA / "fake_worker.py", tmp_path)
    workdir = tmp_path / "run"

    with pytest.raises(
        ResourceError, match="cannot run container command 'bash' of worker trainer-2"
    ):
        run_job(load_job(path), workdir=workdir, out=io.StringIO())
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert "cannot run container command 'bash'" in summary["error"]
    assert not (workdir / "aggregator").exists()


def test_progress_lines() -> None:
    line = 'PLATO_SEDNA_PROGRESS {"round": 3, "rounds": 10, "accuracy": 0.91, "elapsed_s": 12.3}'
    assert Progress.parse(line) == Progress(round=3, rounds=10, accuracy=0.91, elapsed_s=12.3)
    assert Progress.parse(line).describe() == "round 3/10  accuracy 0.9100  (12.3 s)"
    assert Progress.parse('INFO PLATO_SEDNA_PROGRESS {"round": 1}').describe() == "round 1"
    assert Progress.parse("PLATO_SEDNA_PROGRESS {not json") is None
    assert Progress.parse('PLATO_SEDNA_PROGRESS {"round": "3"}') is None
    assert Progress.parse("round 3 done") is None


def test_command_defaults_the_workdir_to_runs_job_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([str(FAKE_JOB)]) == 0
    summary = json.loads((tmp_path / "runs" / "fake-fl" / "summary.json").read_text())
    assert summary["status"] == "succeeded"
    assert "job default/fake-fl succeeded" in capsys.readouterr().out


def test_command_reports_errors_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("plato-sedna run: error: ") and "missing.yaml does not exist" in err

    assert main([str(FAKE_JOB), "--job", "other"]) == 2
    assert "no FederatedLearningJob other" in capsys.readouterr().err

    assert main([str(FAKE_JOB), "--grace", "-1"]) == 2
    assert "must not be negative" in capsys.readouterr().err
