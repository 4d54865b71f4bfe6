"""A trainer whose training fails with an error that will recur ends the job at once, not in a reconnect loop."""

from __future__ import annotations

import errno
import json
import pickle
import shutil
import subprocess
from pathlib import Path

import pytest
from support.lc_server import FakeLocalController
from support.processes import PLATO_SEDNA
from support.workers import clean_env

from plato_sedna.clients.failures import describe, is_permanent
from plato_sedna.errors import ConfigError, JobFailed, ResourceError

RUN_TIMEOUT_S = 300


def _raised_from(error: BaseException, cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise error from inner
    except BaseException as outer:
        return outer


# --- classification ----------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        ConfigError("the detection model has 80 classes but the trainer data has 3"),
        ResourceError("images/7.png cannot be read as an image"),
        FileNotFoundError(errno.ENOENT, "No such file or directory", "data/edge1.txt"),
        RuntimeError("Error(s) in loading state_dict for Model: size mismatch for fc5.weight"),
        IndexError("Target 9 is out of bounds."),
        ValueError("could not convert string to float"),
        pickle.UnpicklingError("invalid load key"),
        # Plato's trainer with max_concurrency: the spawned process failed and left no model
        _raised_from(ValueError("Training on client 1 failed."), FileNotFoundError(errno.ENOENT, "lenet5_1_7.pth")),
    ],
    ids=lambda error: type(error).__name__,
)
def test_errors_that_recur_are_permanent(error: BaseException) -> None:
    assert is_permanent(error)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
        ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
        BrokenPipeError(errno.EPIPE, "Broken pipe"),
        TimeoutError("timed out"),
        OSError(errno.EHOSTUNREACH, "No route to host"),
        # a link error anywhere in the chain: a send on a dropped socket, re-raised as a ValueError
        _raised_from(ValueError("could not send the report"), ConnectionResetError("Cannot write to closing transport")),
        JobFailed("trainer x failed: ..."),  # the session's own verdict: the caller decides
        KeyboardInterrupt(),
    ],
    ids=lambda error: type(error).__name__,
)
def test_link_errors_are_transient(error: BaseException) -> None:
    assert not is_permanent(error)


def test_socketio_errors_are_transient() -> None:
    import socketio

    assert not is_permanent(socketio.exceptions.BadNamespaceError("/ is not a connected namespace."))
    assert not is_permanent(socketio.exceptions.ConnectionError("Connection refused by the server"))


def test_describe_names_the_root_cause() -> None:
    error = _raised_from(ValueError("Training on client 1 failed."), FileNotFoundError("lenet5_1_7.pth"))
    assert describe(error) == "ValueError: Training on client 1 failed. (from FileNotFoundError: lenet5_1_7.pth)"
    assert describe(ConfigError("bad")) == "ConfigError: bad"


# --- a real job ----------------------------------------------------------------


def _edge1_with_a_broken_image(digits_data: Path, folder: Path) -> Path:
    """edge1's images and index in ``folder``, its last entry a file that is no image."""
    folder.mkdir()
    (folder / "images").mkdir()
    lines = (digits_data / "edge1.txt").read_text().splitlines()
    for line in lines:
        name = line.split()[0]
        shutil.copy(digits_data / name, folder / name)
    (folder / "images" / "broken.png").write_bytes(b"this is no image\n" * 8)
    (folder / "edge1.txt").write_text("\n".join([*lines, "images/broken.png 3"]) + "\n")
    return folder / "edge1.txt"


def test_a_trainer_whose_data_fails_training_ends_the_job_in_round_1(
    quickstart_job: Path, digits_data: Path, tmp_path: Path
) -> None:
    """Under trainer.max_concurrency too: the pod trains in-process and fails at the first occurrence."""
    job_dir = quickstart_job.parent
    _edge1_with_a_broken_image(digits_data, job_dir / "broken")
    config = job_dir / "fedavg.toml"
    config.write_text(config.read_text().replace('[trainer]\n', '[trainer]\nmax_concurrency = 3\n'))
    job = quickstart_job.read_text().replace("url: data/edge1.txt", "url: broken/edge1.txt")
    job = job.replace('value: "10"', 'value: "3"')  # rounds
    # Never: the failure at its first occurrence ends the job (OnFailure would restart the pod)
    job = job.replace("          nodeName: edge1\n", "          nodeName: edge1\n          restartPolicy: Never\n")
    assert "restartPolicy: Never" in job
    quickstart_job.write_text(job)
    workdir = tmp_path / "run"

    with FakeLocalController() as controller:
        result = subprocess.run(
            [*PLATO_SEDNA, "run", str(quickstart_job), "--workdir", str(workdir),
             "--timeout", str(RUN_TIMEOUT_S), "--lc-server", controller.url],
            env=clean_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S + 60,
        )
        bodies = controller.bodies()

    output = result.stdout[-4000:] + result.stderr[-4000:]
    assert result.returncode == 1, output
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "failed", summary
    assert summary["workers"]["trainer-1"]["exit_code"] == 1, summary
    assert summary["workers"]["trainer-1"]["restarts"] == 0
    assert not summary["rounds"], summary  # no round was aggregated
    failed = [body for body in bodies if body["status"] == "failed"]
    assert len(failed) == 1, bodies
    assert failed[0]["name"] == summary["workers"]["trainer-1"]["worker_name"]
    assert "ResourceError" in failed[0]["ownerInfo"]["message"]
    assert "broken.png" in failed[0]["ownerInfo"]["message"]
    trainer_log = (workdir / "trainer-1" / "worker.log").read_text()
    assert "Reconnecting" not in trainer_log and "reconnecting as" not in trainer_log
