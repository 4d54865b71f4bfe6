"""The aggregation trigger: a slow trainer cannot stall a round; its late update is dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import QUICKSTART
from support.workers import aggregator_env, free_port, start_plato, stop, trainer_env

from plato_sedna.errors import ConfigError
from plato_sedna.servers.trigger import AggregationTrigger


def test_trigger_settings() -> None:
    assert AggregationTrigger.from_table(None).threshold(3) == 3
    assert AggregationTrigger.from_table({"min_clients": 2}).threshold(3) == 2
    assert AggregationTrigger.from_table({"min_clients": 5}).threshold(3) == 3
    with pytest.raises(ConfigError, match="unknown keys \\['threshold'\\]"):
        AggregationTrigger.from_table({"threshold": 2})
    with pytest.raises(ConfigError, match="timeout_s = -1.0 must be positive"):
        AggregationTrigger.from_table({"timeout_s": -1})


@pytest.mark.slow  # a full job run; the default suite keeps one of each kind (CI runs -m slow too)
def test_a_trainer_slower_than_the_timeout_does_not_stall_the_job(tmp_path: Path, digits_data: Path) -> None:
    config = tmp_path / "fedavg.toml"
    config.write_text((QUICKSTART / "fedavg.toml").read_text() + "\n[server.aggregation_trigger]\ntimeout_s = 3\n")
    port = free_port()
    aggregator = start_plato(
        config,
        tmp_path / "aggregator",
        aggregator_env(port, 2, tmp_path / "out" / "model.pth", digits_data / "test.txt", rounds="8", target_accuracy="1.0"),
    )
    fast = start_plato(config, tmp_path / "fast", trainer_env(port, 2, "digits-edge1", digits_data / "edge1.txt", epochs="8"))
    slow = start_plato(config, tmp_path / "slow", trainer_env(port, 2, "digits-edge2", digits_data / "edge2.txt", epochs="30"))
    try:
        assert aggregator.wait(300) == 0
        assert fast.wait(60) == 0
        assert slow.wait(120) == 0
    finally:
        stop(aggregator, fast, slow)

    log = (tmp_path / "aggregator" / "worker.log").read_text()
    assert "aggregating 1 of 2 updates after 3 s" in log
    assert "Dropped a late update from client #" in log
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["rounds"] == 8 and metrics["stop_reason"] == "rounds"
    assert 1 in [record["clients"] for record in metrics["history"]]
