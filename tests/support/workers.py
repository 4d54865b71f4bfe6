"""Starting real `plato` worker processes with the env Sedna would inject, for tests."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from support.processes import free_port, plain_env, start_run

__all__ = ["aggregator_env", "clean_env", "free_port", "start_plato", "stop", "trainer_env", "wait_for_text"]

clean_env = plain_env


def start_plato(config: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start `python -m plato_sedna -c CONFIG` in ``cwd``; output goes to cwd/worker.log."""
    cwd.mkdir(parents=True, exist_ok=True)
    return start_run([sys.executable, "-m", "plato_sedna", "-c", str(config)], cwd, cwd / "worker.log", env)


def aggregator_env(port: int, participants: int, model_url: Path, test_url: Path, **extra: str):
    return clean_env(
        AGG_BIND_PORT=str(port),
        PARTICIPANTS_COUNT=str(participants),
        JOB_NAME="digits",
        NAMESPACE="default",
        WORKER_NAME="aggworker-test1",
        MODEL_URL=str(model_url),
        TEST_DATASET_URL=str(test_url),
        **extra,
    )


def trainer_env(port: int, participants: int, dataset: str, train_url: Path, **extra: str):
    """A trainer's env; ``extra`` adds variables or replaces these (e.g. a new WORKER_NAME)."""
    variables = {
        "AGG_IP": "127.0.0.1",
        "AGG_PORT": str(port),
        "PARTICIPANTS_COUNT": str(participants),
        "JOB_NAME": "digits",
        "NAMESPACE": "default",
        "WORKER_NAME": f"trainworker-{dataset[-5:]}",
        "DATASET_NAME": dataset,
        "TRAIN_DATASET_URL": str(train_url),
    }
    return clean_env(**(variables | extra))


def wait_for_text(log: Path, text: str, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    """Wait until ``text`` appears in ``log``; fail if the process ends first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process ended (rc={process.returncode}) before {text!r}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"{text!r} did not appear in {log} within {timeout_s} s:\n{log.read_text()[-3000:]}")


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)
