"""Aggregator and trainers as separate `plato` processes: waiting, leaving, rejoining, failing."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from conftest import QUICKSTART
from support.workers import (
    aggregator_env,
    free_port,
    start_plato,
    stop,
    trainer_env,
    wait_for_text,
)

CONFIG = QUICKSTART / "fedavg.toml"
EXIT_TIMEOUT_S = 240


def test_trainer_started_first_waits_then_joins(tmp_path: Path, digits_data: Path) -> None:
    port = free_port()
    trainer = start_plato(
        CONFIG, tmp_path / "trainer", trainer_env(port, 1, "digits-edge1", digits_data / "edge1.txt", CONNECT_TIMEOUT="120")
    )
    aggregator = None
    try:
        wait_for_text(tmp_path / "trainer" / "worker.log", "Aggregator not reachable yet", 60, trainer)
        aggregator = start_plato(
            CONFIG,
            tmp_path / "aggregator",
            aggregator_env(port, 1, tmp_path / "model.pth", digits_data / "test.txt", rounds="1"),
        )
        assert aggregator.wait(EXIT_TIMEOUT_S) == 0
        assert trainer.wait(EXIT_TIMEOUT_S) == 0
    finally:
        stop(trainer, *([aggregator] if aggregator else []))
    assert json.loads((tmp_path / "metrics.json").read_text())["rounds"] == 1


@pytest.mark.slow  # a full job run; the default suite keeps one of each kind (CI runs -m slow too)
def test_trainer_gives_up_after_connect_timeout(tmp_path: Path, digits_data: Path) -> None:
    port = free_port()
    trainer = start_plato(
        CONFIG, tmp_path / "trainer", trainer_env(port, 1, "digits-edge1", digits_data / "edge1.txt", CONNECT_TIMEOUT="3")
    )
    try:
        assert trainer.wait(120) != 0
    finally:
        stop(trainer)
    log = (tmp_path / "trainer" / "worker.log").read_text()
    assert "did not accept a connection within 3 s" in log and "CONNECT_TIMEOUT" in log
    assert "Traceback" not in log


def test_a_trainer_leaving_does_not_stop_the_job_and_rejoins(tmp_path: Path, digits_data: Path) -> None:
    port = free_port()
    env = aggregator_env(port, 2, tmp_path / "out" / "model.pth", digits_data / "test.txt", rounds="4", target_accuracy="1.0")
    aggregator = start_plato(CONFIG, tmp_path / "aggregator", env)

    def trainer(number: int, folder: str, worker_name: str):
        env = trainer_env(port, 2, f"digits-edge{number}", digits_data / f"edge{number}.txt", epochs="3")
        return start_plato(CONFIG, tmp_path / folder, env | {"WORKER_NAME": worker_name})

    first, second = trainer(1, "trainer-1", "trainworker-a1b2c"), trainer(2, "trainer-2", "trainworker-d3e4f")
    restarted = None
    try:
        wait_for_text(tmp_path / "trainer-2" / "worker.log", "Started training epoch 1", 120, second)
        second.kill()  # killed mid-round, as a node loss would
        second.wait(10)
        wait_for_text(tmp_path / "aggregator" / "worker.log", "disconnected; 1 trainer(s) connected", 30, aggregator)
        time.sleep(1)
        assert aggregator.poll() is None, "the aggregator must survive a trainer leaving"
        # the pod is rescheduled: a new random WORKER_NAME, the same Dataset
        restarted = trainer(2, "trainer-2-restarted", "trainworker-x9y8z")
        assert aggregator.wait(EXIT_TIMEOUT_S) == 0
        assert first.wait(60) == 0 and restarted.wait(60) == 0
    finally:
        stop(aggregator, first, second, *([restarted] if restarted else []))
    aggregator_log = (tmp_path / "aggregator" / "worker.log").read_text()
    first_id = re.search(r"Trainer digits-edge2 is client #(\d)\n", aggregator_log).group(1)
    assert f"Trainer digits-edge2 is client #{first_id} (rejoined)" in aggregator_log
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["rounds"] == 4


def _run_two_trainers(tmp_path: Path, digits_data: Path, first: str, second: str) -> str:
    """One round with trainer ``first`` joining before ``second``; the aggregator's log."""
    port = free_port()
    env = aggregator_env(port, 2, tmp_path / "out" / "model.pth", digits_data / "test.txt", rounds="1")
    aggregator = start_plato(CONFIG, tmp_path / "aggregator", env)
    log = tmp_path / "aggregator" / "worker.log"
    started = []
    try:
        for dataset in (first, second):
            env = trainer_env(port, 2, dataset, digits_data / f"{dataset.removeprefix('digits-')}.txt")
            started.append(start_plato(CONFIG, tmp_path / f"{dataset}-{len(started)}", env))
            wait_for_text(log, f"Trainer {dataset} is client #", 120, aggregator)
        assert aggregator.wait(EXIT_TIMEOUT_S) == 0
        assert all(trainer.wait(60) == 0 for trainer in started)
    finally:
        stop(aggregator, *started)
    return log.read_text()


@pytest.mark.slow  # a full job run; the default suite keeps one of each kind (CI runs -m slow too)
def test_a_restarted_aggregator_gives_each_trainer_its_recorded_id(tmp_path: Path, digits_data: Path) -> None:
    first_log = _run_two_trainers(tmp_path, digits_data, "digits-edge1", "digits-edge2")
    ids = dict(re.findall(r"Trainer (digits-edge\d) is client #(\d)", first_log))
    assert ids == {"digits-edge1": "1", "digits-edge2": "2"}
    recorded = json.loads((tmp_path / "aggregator" / "runtime" / "checkpoints" / "trainer_ids.json").read_text())
    assert recorded == {"job": "digits", "ids": {"digits-edge1": 1, "digits-edge2": 2}}

    # the aggregator restarts on the same volume; the trainers rejoin in the other order
    second_log = _run_two_trainers(tmp_path, digits_data, "digits-edge2", "digits-edge1")
    assert "Restored the ids of 2 trainer(s)" in second_log
    assert dict(re.findall(r"Trainer (digits-edge\d) is client #(\d)", second_log)) == ids


@pytest.mark.slow  # a full job run; the default suite keeps one of each kind (CI runs -m slow too)
def test_trainers_fail_when_the_aggregator_does_not_come_back(tmp_path: Path, digits_data: Path) -> None:
    """A trainer reconnects after a lost link, but only for CONNECT_TIMEOUT seconds."""
    port = free_port()
    aggregator = start_plato(
        CONFIG,
        tmp_path / "aggregator",
        aggregator_env(port, 1, tmp_path / "model.pth", digits_data / "test.txt", rounds="50", target_accuracy="1.0"),
    )
    env = trainer_env(port, 1, "digits-edge1", digits_data / "edge1.txt", CONNECT_TIMEOUT="5")
    trainer = start_plato(CONFIG, tmp_path / "trainer", env)
    try:
        wait_for_text(tmp_path / "aggregator" / "worker.log", "PLATO_SEDNA_PROGRESS", 120, aggregator)
        aggregator.kill()
        assert trainer.wait(120) != 0
    finally:
        stop(aggregator, trainer)
    log = (tmp_path / "trainer" / "worker.log").read_text()
    assert "Lost the link to the aggregator" in log
    assert "lost its connection to the aggregator" in log and "could not reconnect" in log
