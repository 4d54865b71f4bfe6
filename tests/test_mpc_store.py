"""fedavg_mpc_* in pods: a round store of secret shares every pod reaches, with no lock (issue #12)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support.workers import free_port
from test_algorithm_catalog import TRAINER_ENV, plato_cli, resolve, set_env
from test_quickstart_e2e import run_job
from test_s3_transmitter_e2e import (
    bucket_keys,
    copy_job,
    run_jobs_side_by_side,
    two_rounds_from_fixed_weights,
    with_s3_transmitter,
)

from plato_sedna.context import MPC_STORE_URL_ENV, SednaContext
from plato_sedna.errors import ConfigError
from plato_sedna.mpc_store import SharedRoundStore, store_url

pytest_plugins = ("support.storage_fixtures",)


def _two_parties(url: str, storage, tmp_path: Path) -> tuple[SharedRoundStore, SharedRoundStore]:
    """The aggregator's and a trainer's store on one URL: separate objects, as in two pods."""
    return (SharedRoundStore(url, storage, str(tmp_path / "scratch-a")),
            SharedRoundStore(url, storage, str(tmp_path / "scratch-b")))


def _exercise(aggregator: SharedRoundStore, trainer: SharedRoundStore) -> None:
    import torch

    aggregator.reset()
    with pytest.raises(RuntimeError, match="Round information has not been initialised yet"):
        trainer.load_state()
    aggregator.initialise_round(1, [3, 5])
    trainer.record_client_samples(3, 40)
    aggregator.record_client_samples(5, 60)
    trainer.append_additive_share(5, {"w": torch.tensor([1.0, 2.0])})
    aggregator.append_additive_share(5, {"w": torch.tensor([0.5, -1.0])})  # two writers, one target
    trainer.store_pairwise_share(3, 5, {"w": torch.tensor([7.0])})

    state = aggregator.load_state()
    assert state.round_number == 1 and state.selected_clients == [3, 5]
    assert state.client_samples == {3: 40, 5: 60}
    assert torch.equal(state.additive_shares[5]["w"], torch.tensor([1.5, 1.0]))
    assert state.additive_shares[3] is None
    assert torch.equal(state.pairwise_shares[(3, 5)]["w"], torch.tensor([7.0]))

    aggregator.initialise_round(2, [3, 5])
    aggregator.initialise_round(3, [5])
    state = trainer.load_state()  # the latest round, with nothing recorded yet
    assert state.round_number == 3 and state.selected_clients == [5] and state.client_samples == {5: None}
    aggregator.reset()
    with pytest.raises(RuntimeError, match="not been initialised"):
        trainer.load_state()


def test_round_store_in_a_shared_folder(tmp_path: Path, storage) -> None:
    aggregator, trainer = _two_parties(str(tmp_path / "shared"), storage, tmp_path)
    _exercise(aggregator, trainer)


def test_round_store_in_s3_and_old_rounds_removed(tmp_path: Path, storage, s3_bucket: str, s3_client) -> None:
    url = f"s3://{s3_bucket}/fl/mpc"
    aggregator, trainer = _two_parties(url, storage, tmp_path)
    aggregator.initialise_round(1, [1, 2])
    trainer.record_client_samples(1, 10)
    aggregator.initialise_round(2, [1, 2])
    aggregator.initialise_round(3, [1, 2])
    assert sorted(bucket_keys(s3_client, s3_bucket)) == ["fl/mpc/r000002.state", "fl/mpc/r000003.state"]
    _exercise(aggregator, trainer)
    assert bucket_keys(s3_client, s3_bucket) == []


def test_store_url_comes_from_the_env_or_the_s3_transmitter() -> None:
    trainer = SednaContext.from_env(TRAINER_ENV)
    assert store_url(trainer, {MPC_STORE_URL_ENV: "s3://b/mpc/"}) == "s3://b/mpc/"
    over_s3 = SednaContext.from_env({**TRAINER_ENV, "TRANSMITTER": "s3", "AGG_DATA_PATH": "s3://b/fl",
                                     "NAMESPACE": "edge", "JOB_NAME": "digits"})
    assert store_url(over_s3, {}) == "s3://b/fl/edge/digits/mpc/"
    with pytest.raises(ConfigError, match=rf"use the S3 transmitter .* or set {MPC_STORE_URL_ENV} in every pod template"):
        store_url(trainer, {})
    with pytest.raises(ConfigError, match="cannot be written"):
        store_url(trainer, {MPC_STORE_URL_ENV: "https://example.org/mpc"})


def test_the_env_alone_sets_plato_mpc_client_and_processor() -> None:
    config = resolve({**TRAINER_ENV, "aggregation_algorithm": "fedavg_mpc_shamir"})
    assert (config["server"]["type"], config["clients"]["type"]) == ("fedavg_mpc_shamir", "mpc")
    assert config["clients"]["outbound_processors"] == ["mpc_model_encrypt_shamir"]


def test_a_trainer_pod_without_a_store_stops_at_start(tmp_path: Path) -> None:
    result = plato_cli(tmp_path, AGG_IP="127.0.0.1", AGG_PORT=str(free_port()), PARTICIPANTS_COUNT="2",
                       DATASET_NAME="digits-edge1", AGGREGATION_ALGORITHM="fedavg_mpc_shamir")

    assert result.returncode == 2
    assert "plato: error: fedavg_mpc_additive/fedavg_mpc_shamir keep a round store of secret shares" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_names_a_template_with_mpc_and_no_store(quickstart_job: Path, capsys) -> None:
    from plato_sedna.tools import validate

    set_env(quickstart_job, {"aggregation_algorithm": "fedavg_mpc_additive"})
    assert validate.main([str(quickstart_job)]) == 1
    out = capsys.readouterr().out
    assert "trainingWorkers[1].template.spec.containers[0].env: fedavg_mpc_additive keeps a round store of secret shares" in out
    set_env(quickstart_job, {"aggregation_algorithm": "fedavg_mpc_additive", MPC_STORE_URL_ENV: "s3://bucket/mpc/"})
    assert validate.main([str(quickstart_job)]) == 0
    with_s3_transmitter(quickstart_job, "s3://bucket/fl", "http://127.0.0.1:9")
    set_env(quickstart_job, {"aggregation_algorithm": "fedavg_mpc_additive"})
    text = quickstart_job.read_text()
    quickstart_job.write_text(re.sub(r" *- name: PLATO_SEDNA_MPC_STORE_URL\n *value: [^\n]*\n", "", text))
    assert MPC_STORE_URL_ENV not in quickstart_job.read_text()
    assert validate.main([str(quickstart_job)]) == 0  # beside the transmitter's payloads


def _mpc_log_checks(workdir: Path, kind: str) -> None:
    aggregator = (workdir / "aggregator" / "worker.log").read_text()
    assert re.search(r"Deleted the MPC round store \S+", aggregator)
    for trainer in ("trainer-1", "trainer-2"):
        log = (workdir / trainer / "worker.log").read_text()
        assert f"Using Processor for sending payload: mpc_model_encrypt_{kind}" in log
        assert "MPC round store: " in log


@pytest.mark.slow
def test_additive_shares_give_the_fedavg_model(quickstart_job: Path, tmp_path: Path) -> None:
    """From the same weights and seeds, the aggregate reconstructed from shares is FedAvg's.

    One round: the shares' random offsets come from Python's global RNG, which moves
    the trainers' later shuffles, so a second round would train on other batches.
    """
    import torch

    two_rounds_from_fixed_weights(quickstart_job)
    set_env(quickstart_job, {"rounds": "1"})
    mpc_job = copy_job(quickstart_job, "mpc")
    set_env(mpc_job, {"aggregation_algorithm": "fedavg_mpc_additive"})
    runs = {"fedavg": (quickstart_job, tmp_path / "run-fedavg"), "mpc": (mpc_job, tmp_path / "run-mpc")}

    run_jobs_side_by_side(runs, rounds=1)
    workdir = runs["mpc"][1]
    _mpc_log_checks(workdir, "additive")
    assert f"MPC round store: {workdir / 'mpc'}/" in (workdir / "trainer-1" / "worker.log").read_text()
    assert not (workdir / "mpc").exists() or not any((workdir / "mpc").iterdir())  # no shares left
    models = {name: torch.load(folder / "model" / "digits-lenet5.pth", weights_only=True) for name, (_, folder) in runs.items()}
    for key, weights in models["fedavg"].items():
        # Shares carry +-0.5 offsets on sample-scaled weights: float32 rounding, nothing more.
        assert torch.allclose(models["mpc"][key], weights, atol=1e-4, rtol=0), key


@pytest.mark.slow
def test_shamir_runs_over_the_s3_transmitter_and_leaves_nothing(
    quickstart_job: Path, tmp_path: Path, s3_server, s3_client, s3_bucket
) -> None:
    set_env(quickstart_job, {"aggregation_algorithm": "fedavg_mpc_shamir", "rounds": "2"})
    with_s3_transmitter(quickstart_job, f"s3://{s3_bucket}/fl", s3_server.endpoint_url)
    workdir = tmp_path / "run"

    result = run_job(quickstart_job, workdir)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "succeeded" and summary["rounds"] == 2 and summary["accuracy"] >= 0.5
    _mpc_log_checks(workdir, "shamir")
    assert f"MPC round store: s3://{s3_bucket}/fl/default/digits-fedavg/mpc/" in (workdir / "trainer-2" / "worker.log").read_text()
    assert not (workdir / "mpc").exists()  # the store was S3's, not a local folder
    assert bucket_keys(s3_client, s3_bucket) == []
