"""A plain Plato config with no Sedna env: `plato` runs it exactly as Plato's own launcher does."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest
from support.fake_mnist import (
    plato_own_command,
    plato_sedna_command,
    results_csv,
    write_fake_mnist,
    write_plain_config,
    write_plato_launcher,
)
from support.processes import free_port, reap_clients, start_run, wait_run

ROUNDS = 2
RUN_TIMEOUT_S = 240


def _read_results(path: Path) -> list[list[str]]:
    with open(path, newline="") as results:
        return list(csv.reader(results))


def _start(command_for, folder: Path) -> tuple[subprocess.Popen, Path, Path]:
    """A fresh base with fake MNIST and a config on a free port; the launcher started in folder."""
    folder.mkdir()
    base = folder / "base"
    write_fake_mnist(base)
    config = write_plain_config(folder / "config.toml", free_port(), rounds=ROUNDS)
    log = folder / "run.log"
    return start_run(command_for(config, base), folder, log), base, log


def _finish(process: subprocess.Popen, base: Path, log: Path) -> list[list[str]]:
    try:
        returncode = wait_run(process, RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"no exit within {RUN_TIMEOUT_S} s; log tail:\n{log.read_text()[-3000:]}")
    reap_clients(process)
    assert returncode == 0, f"exit {returncode}; log tail:\n{log.read_text()[-3000:]}"
    return _read_results(results_csv(base, process.pid))


def test_plain_config_runs_like_platos_own_launcher(tmp_path: Path) -> None:
    launcher = write_plato_launcher(tmp_path / "plato_launcher.py")
    # Both at once: each is mostly interpreter start-up and Plato's 5 s client sleep.
    ours = _start(plato_sedna_command, tmp_path / "plato_sedna")
    theirs = _start(lambda config, base: plato_own_command(launcher, config, base), tmp_path / "plato")

    our_rows = _finish(*ours)
    their_rows = _finish(*theirs)

    assert our_rows[0] == their_rows[0] == ["round", "accuracy", "elapsed_time"]
    assert [row[0] for row in our_rows[1:]] == [row[0] for row in their_rows[1:]] == ["1", "2"]
    assert all(0.0 <= float(row[1]) <= 1.0 for row in our_rows[1:])
