"""fedavg_cross_silo in pods: the aggregator keeps each silo's model and merges them every local_rounds (issue #12)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import QUICKSTART
from test_algorithm_catalog import AGGREGATOR_ENV, TRAINER_ENV, resolve, set_env
from test_s3_transmitter_e2e import (
    copy_job,
    run_jobs_side_by_side,
    two_rounds_from_fixed_weights,
)

from plato_sedna.algorithms.cross_silo import SiloModels, silo_of, weighted_average
from plato_sedna.errors import ConfigError

CROSS_SILO = {"aggregation_algorithm": "fedavg_cross_silo", "total_silos": "2", "local_rounds": "2"}


@pytest.mark.parametrize(("trainers", "silos"), [(2, 2), (5, 2), (7, 3), (4, 1), (9, 4)])
def test_silos_split_trainers_as_platos_edge_servers_do(trainers: int, silos: int) -> None:
    # Plato's clients.base.get_edge_server_id: np.array_split of the launched ids over the silos
    expected = {}
    for silo, chunk in enumerate(np.array_split(np.arange(trainers), silos), start=1):
        for index in chunk:
            expected[int(index) + 1] = silo
    assert {client: silo_of(client, trainers, silos) for client in range(1, trainers + 1)} == expected


def _weights(value: float) -> dict:
    return {"w": torch.full((2,), value), "steps": torch.tensor(value, dtype=torch.int64)}


def test_silo_models_train_apart_and_merge_every_local_rounds() -> None:
    silos = SiloModels(local_rounds=2)
    start = _weights(0.0)
    assert silos.weights_for(1, start) is start

    merged, did_merge = silos.aggregate(1, [(1, 10, _weights(1.0)), (1, 30, _weights(3.0)), (2, 60, _weights(6.0))])
    assert not did_merge
    assert torch.allclose(silos.weights_for(1, start)["w"], torch.full((2,), 2.5))  # 10:30 within silo 1
    assert torch.allclose(silos.weights_for(2, start)["w"], torch.full((2,), 6.0))
    assert torch.allclose(merged["w"], torch.full((2,), 0.4 * 2.5 + 0.6 * 6.0))  # 40:60 across silos
    assert merged["steps"].dtype == torch.int64

    merged, did_merge = silos.aggregate(2, [(1, 40, _weights(1.0)), (2, 60, _weights(2.0))])
    assert did_merge and torch.allclose(merged["w"], torch.full((2,), 1.6))
    for silo in (1, 2):  # every silo starts the next round from the merge
        assert torch.allclose(silos.weights_for(silo, start)["w"], merged["w"])


def test_weighted_average_without_samples_is_the_plain_mean() -> None:
    assert torch.allclose(weighted_average([(_weights(1.0), 0), (_weights(3.0), 0)])["w"], torch.full((2,), 2.0))


def test_in_pods_the_aggregator_keeps_the_silos_and_no_edge_server_is_spawned() -> None:
    for env in (AGGREGATOR_ENV, TRAINER_ENV):
        config = resolve({**env, **CROSS_SILO})
        assert config["server"]["type"] == "sedna_cross_silo"
        assert "cross_silo" not in config["algorithm"]  # Plato would spawn edge servers on other ports
        assert (config["algorithm"]["total_silos"], config["algorithm"]["local_rounds"]) == (2, 2)
    plain = resolve({"aggregation_algorithm": "fedavg_cross_silo"})  # Plato's own launcher: its edge servers
    assert plain["server"]["type"] == "fedavg_cross_silo" and plain["algorithm"]["cross_silo"] is True


def test_a_plato_cross_silo_config_runs_in_pods_unchanged(tmp_path: Path) -> None:
    config = tmp_path / "cross_silo.toml"
    text = (QUICKSTART / "fedavg.toml").read_text().replace('random_seed = 1\n', 'random_seed = 1\ntype = "fedavg_cross_silo"\n', 1)
    text = text.replace("[algorithm]\n", "[algorithm]\ncross_silo = true\ntotal_silos = 2\nlocal_rounds = 3\n", 1)
    config.write_text(text)
    resolved = resolve(AGGREGATOR_ENV, config)
    assert resolved["server"]["type"] == "sedna_cross_silo" and "cross_silo" not in resolved["algorithm"]
    assert resolved["algorithm"]["local_rounds"] == 3


def test_silos_and_local_rounds_are_required_and_checked() -> None:
    with pytest.raises(ConfigError, match=r"fedavg_cross_silo needs algorithm.total_silos.*set the total_silos env"):
        resolve({**TRAINER_ENV, "aggregation_algorithm": "fedavg_cross_silo", "local_rounds": "2"})
    with pytest.raises(ConfigError, match=r"3 silos for 2 trainers leaves a silo without any"):
        resolve({**AGGREGATOR_ENV, **CROSS_SILO, "total_silos": "3"})


@pytest.mark.slow
def test_silos_train_apart_until_they_merge(quickstart_job: Path, tmp_path: Path) -> None:
    """From the same weights: round 1 is FedAvg's model; in round 2 each trainer starts from its own silo's."""
    two_rounds_from_fixed_weights(quickstart_job)
    silo_job = copy_job(quickstart_job, "cross-silo")
    set_env(silo_job, {**CROSS_SILO, "local_rounds": "3"})  # no merge before the job ends
    runs = {"fedavg": (quickstart_job, tmp_path / "run-fedavg"), "silos": (silo_job, tmp_path / "run-silos")}

    run_jobs_side_by_side(runs, rounds=2)

    workdir = runs["silos"][1]
    resolved = tomllib.loads((workdir / "aggregator" / "runtime" / "config.resolved.toml").read_text())
    assert resolved["server"]["type"] == "sedna_cross_silo" and "cross_silo" not in resolved["algorithm"]
    metrics = {name: json.loads((folder / "model" / "metrics.json").read_text()) for name, (_, folder) in runs.items()}
    assert metrics["silos"]["silos"] == {"1": [1], "2": [2]} and metrics["silos"]["merge_rounds"] == []
    first = [metrics[name]["history"][0]["accuracy"] for name in runs]
    assert abs(first[0] - first[1]) <= 1 / 359 + 1e-9  # the same model, up to one test sample's rounding
    models = {name: torch.load(folder / "model" / "digits-lenet5.pth", weights_only=True) for name, (_, folder) in runs.items()}
    largest = max((models["silos"][key] - weights).abs().max().item() for key, weights in models["fedavg"].items())
    assert largest > 1e-3  # round 2 trained each silo's own model, not FedAvg's average
    log = (workdir / "aggregator" / "worker.log").read_text()
    assert "Cross-silo FedAvg: 2 trainers in 2 silos (silo 1: [1]; silo 2: [2]), merged every 3 round(s)" in log
    assert "Round 2: silos [1, 2] trained their own models" in log


@pytest.mark.slow
@pytest.mark.extended
def test_silos_merge_every_local_rounds_in_a_job(quickstart_job: Path, tmp_path: Path) -> None:
    set_env(quickstart_job, {**CROSS_SILO, "rounds": "4", "target_accuracy": "0.999"})
    runs = {"silos": (quickstart_job, tmp_path / "run")}

    run_jobs_side_by_side(runs, rounds=4)

    metrics = json.loads((tmp_path / "run" / "model" / "metrics.json").read_text())
    assert metrics["merge_rounds"] == [2, 4] and metrics["accuracy"] >= 0.8
