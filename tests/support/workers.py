"""Starting real `plato` worker processes with the env Sedna would inject, for tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

SEDNA_VARIABLES = (
    "AGG_IP AGG_PORT AGG_BIND_PORT PARTICIPANTS_COUNT JOB_NAME NAMESPACE WORKER_NAME DATASET_NAME "
    "MODEL_NAME TRAIN_DATASET_URL TEST_DATASET_URL MODEL_URL PRETRAINED_MODEL_URL SEDNA_ROLE "
    "config_file PLATO_SEDNA_MANIFESTS CONNECT_TIMEOUT"
).split()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SEDNA_VARIABLES}
    env.update({"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}, **variables)
    return env


def start_plato(config: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start `python -m plato_sedna -c CONFIG` in ``cwd``; output goes to cwd/worker.log."""
    cwd.mkdir(parents=True, exist_ok=True)
    log = open(cwd / "worker.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "plato_sedna", "-c", str(config)],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


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
    return clean_env(
        AGG_IP="127.0.0.1",
        AGG_PORT=str(port),
        PARTICIPANTS_COUNT=str(participants),
        JOB_NAME="digits",
        NAMESPACE="default",
        WORKER_NAME=f"trainworker-{dataset[-5:]}",
        DATASET_NAME=dataset,
        TRAIN_DATASET_URL=str(train_url),
        **extra,
    )


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
