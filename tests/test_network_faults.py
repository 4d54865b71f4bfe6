"""Network faults: aggregator and trainers on separate network namespaces, a trainer's link cut.

Each process runs on its own "host" (network namespace) joined to a bridge, as pods on
separate nodes are; `tests/support/netns.py` builds that inside an unprivileged user
namespace. The link of one trainer is cut mid-round and restored.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from conftest import QUICKSTART
from support.netns import NetnsLab, address, unavailable_reason
from support.workers import aggregator_env, trainer_env, wait_for_text

AGG_PORT = 7363  # Sedna's AGG_BIND_PORT: every host has its own ports
ROUNDS = 3
EXIT_TIMEOUT_S = 300
PLATO = (sys.executable, "-m", "plato_sedna", "-c")

_REASON = unavailable_reason()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(_REASON is not None, reason=f"needs network namespaces: {_REASON}")]


def _start_job(lab: NetnsLab, tmp_path: Path, digits_data: Path, config: Path, **aggregator_extra: str) -> None:
    env = aggregator_env(
        AGG_PORT, 2, tmp_path / "out" / "model.pth", digits_data / "test.txt",
        rounds=str(ROUNDS), target_accuracy="1.0", **aggregator_extra,
    )
    lab.start("aggregator", address(1), [*PLATO, str(config)], env, tmp_path / "aggregator")
    for number in (1, 2):
        env = trainer_env(AGG_PORT, 2, f"digits-edge{number}", digits_data / f"edge{number}.txt", AGG_IP=address(1))
        lab.start(f"trainer-{number}", address(1 + number), [*PLATO, str(config)], env, tmp_path / f"trainer-{number}")


def _cut_mid_round(lab: NetnsLab, tmp_path: Path, seconds: float) -> None:
    """Cut trainer-2's link while it trains round 2; restore it after ``seconds``."""
    wait_for_text(tmp_path / "trainer-2" / "worker.log", "Started training in communication round #2", 240)
    lab.link("trainer-2", up=False)
    time.sleep(seconds)
    lab.link("trainer-2", up=True)


def _finish(lab: NetnsLab, tmp_path: Path) -> dict:
    for name in ("aggregator", "trainer-1", "trainer-2"):
        rc = lab.wait(name, EXIT_TIMEOUT_S)
        assert rc == 0, f"{name} exited {rc}:\n" + (tmp_path / name / "worker.log").read_text()[-3000:]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["rounds"] == ROUNDS and metrics["stop_reason"] == "rounds"
    assert [record["round"] for record in metrics["history"]] == list(range(1, ROUNDS + 1))
    return metrics


def test_a_link_cut_shorter_than_the_transport_timeouts_is_absorbed(tmp_path: Path, digits_data: Path) -> None:
    """TCP retransmits across a 6 s cut: the connection stays up, every round has both trainers."""
    config = QUICKSTART / "fedavg.toml"
    with NetnsLab(tmp_path / "hub.log") as lab:
        _start_job(lab, tmp_path, digits_data, config)
        _cut_mid_round(lab, tmp_path, 6)
        metrics = _finish(lab, tmp_path)
    assert all(record["clients"] == 2 and record["missing"] == [] for record in metrics["history"])
    assert metrics["trainer_events"] == []


def test_a_link_cut_that_drops_the_connection_is_waited_out(tmp_path: Path, digits_data: Path) -> None:
    """With socket.io pings the aggregator drops the cut trainer; it reconnects and gets its round again."""
    config = tmp_path / "fedavg.toml"
    quickstart = (QUICKSTART / "fedavg.toml").read_text()
    config.write_text(quickstart.replace("[server]\n", "[server]\nping_interval = 2\nping_timeout = 6\n", 1))
    with NetnsLab(tmp_path / "hub.log") as lab:
        _start_job(lab, tmp_path, digits_data, config, on_trainer_loss="wait", trainer_timeout="5")
        _cut_mid_round(lab, tmp_path, 20)
        metrics = _finish(lab, tmp_path)

    events = [(event["event"], event["trainer"]) for event in metrics["trainer_events"]]
    assert events == [("lost", "digits-edge2"), ("rejoined", "digits-edge2")], events
    lost_id = metrics["trainer_events"][0]["client_id"]
    assert metrics["trainer_events"][1]["client_id"] == lost_id  # the same identity after the reconnect
    cut_round = metrics["history"][1]
    assert cut_round["lost"] == [lost_id] and cut_round["rejoined"] == [lost_id]
    assert all(record["clients"] == 2 and record["missing"] == [] for record in metrics["history"])
    aggregator_log = (tmp_path / "aggregator" / "worker.log").read_text()
    assert "Trainer digits-edge2 is client #%d (rejoined)" % lost_id in aggregator_log
    assert "Lost the link to the aggregator" in (tmp_path / "trainer-2" / "worker.log").read_text()
