"""Adaptive synchronization frequency (GIFT): the consistency rate, the rule for tau, and real runs."""

from __future__ import annotations

import json
import re
import subprocess
from itertools import pairwise
from pathlib import Path

import pytest
import torch
from support.fake_mnist import (
    plato_sedna_command,
    results_csv,
    write_fake_mnist,
    write_plain_config,
)
from support.processes import free_port, reap_clients, start_run, wait_run
from test_mistnet_e2e import edit_job
from test_quickstart_e2e import run_job

from plato_sedna.algorithms.adaptive_sync_consistency import ConsistencyRate
from plato_sedna.algorithms.adaptive_sync_frequency import SyncFrequency
from plato_sedna.algorithms.adaptive_sync_settings import AdaptiveSyncSettings
from plato_sedna.config import HYPERPARAMETER_KEYS, load_config_file
from plato_sedna.context import SednaContext
from plato_sedna.errors import ConfigError

QUICKSTART = Path(__file__).resolve().parents[1] / "demos" / "quickstart"


def deltas(*values: list[float]) -> list[dict[str, torch.Tensor]]:
    return [{"conv.weight": torch.tensor(v[:2]), "fc.bias": torch.tensor(v[2:])} for v in values]


# The consistency rate


def test_agreeing_updates_have_rate_one() -> None:
    updates = deltas([0.1, -0.2, 0.3, 0.0], [0.5, -0.1, 0.2, 0.0], [0.01, -0.3, 0.4, 0.0])
    assert ConsistencyRate(alpha=0.9).update(updates) == pytest.approx(1.0)  # the unmoved scalar counts as 1


def test_opposite_updates_have_rate_near_zero() -> None:
    assert ConsistencyRate(alpha=0.9).update(deltas([0.1, -0.2, 0.3, 0.4], [-0.1, 0.2, -0.3, -0.4])) == pytest.approx(0.0)
    nearly = ConsistencyRate(alpha=0.9).update(deltas([0.1, -0.2, 0.3, 0.4], [-0.09, 0.21, -0.3, -0.41]))
    assert 0 < nearly < 0.05


def test_rate_uses_moving_averages_across_rounds_and_resets() -> None:
    rate = ConsistencyRate(alpha=0.5)
    assert rate.update(deltas([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0])) == pytest.approx(1.0)
    # Opposite this round; the averages remember the agreeing one: Pos = 1.5, Neg = -0.5, so |1| / 2.
    assert rate.update(deltas([1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.0])) == pytest.approx(0.5)
    rate.reset()
    assert rate.update(deltas([1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.0])) == pytest.approx(0.0)


def test_mismatched_updates_are_refused() -> None:
    with pytest.raises(ValueError, match="different parameters"):
        ConsistencyRate(0.9).update([{"a": torch.zeros(2)}, {"b": torch.zeros(2)}])


# The rule for tau


def replay(rule: SyncFrequency, rates: list[float]) -> list[int]:
    """tau for each round (the one trainers ran) after feeding ``rates`` one round at a time."""
    return [rule.observe(round_number, rate).sync_frequency for round_number, rate in enumerate(rates, start=1)]


def test_tau_halves_after_window_rounds_without_a_new_minimum_and_the_window_doubles() -> None:
    rule = SyncFrequency(tau=8, window=2)
    falling_then_flat = [0.9, 0.8, 0.85, 0.82]  # minimum at round 2; rounds 3 and 4 set none
    assert replay(rule, falling_then_flat) == [8, 8, 8, 8]
    assert (rule.tau, rule.window) == (4, 4)
    # Round 5 is a new minimum (it was reset); rounds 6-9 are four without one: tau 4 -> 2.
    taus = [rule.observe(r, c).sync_frequency for r, c in zip(range(5, 11), [0.7, 0.75, 0.72, 0.71, 0.73, 0.74])]
    assert taus == [4, 4, 4, 4, 4, 2]
    assert (rule.tau, rule.window) == (2, 8)


def test_tau_is_a_ceiling_half_and_never_goes_below_one() -> None:
    rule = SyncFrequency(tau=5, window=1)
    taus = replay(rule, [0.5, 0.6, 0.5, 0.6, 0.5, 0.6, 0.5, 0.6, 0.7, 0.8, 0.9])
    assert taus == [5, 5, 3, 3, 3, 2, 2, 2, 2, 2, 2] and rule.tau == 1  # 5 -> 3 -> 2 -> 1, windows 1, 2, 4
    assert [rule.observe(r, 0.99).sync_frequency for r in range(12, 40)] == [1] * 28
    assert isinstance(rule.tau, int)


def test_no_change_while_the_minimum_keeps_falling_or_during_warm_up() -> None:
    assert replay(SyncFrequency(tau=4, window=1), [0.9, 0.8, 0.7, 0.6]) == [4, 4, 4, 4]
    warm = SyncFrequency(tau=4, window=1, warmup_rounds=3)
    assert replay(warm, [0.5, 0.6, 0.6, 0.6, 0.6]) == [4, 4, 4, 4, 2]  # bifurcation from round 2, acted on in round 4


# Settings


def test_settings_defaults_and_tau_from_trainer_epochs() -> None:
    settings = AdaptiveSyncSettings.from_tables({}, trainer_epochs=3)
    assert (settings.initial_sync_frequency, settings.window, settings.warmup_rounds) == (3, 5, 0)
    assert AdaptiveSyncSettings.from_tables({"window": 3}).window == 3
    assert AdaptiveSyncSettings.from_tables({"window": 3, "bifurcation_window": 2}).window == 2


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"initial_sync_frequency": 0}, "algorithm.initial_sync_frequency = 0"),
        ({"initial_sync_frequency": 2.5}, "algorithm.initial_sync_frequency = 2.5"),
        ({"moving_average_alpha": 1.0}, "algorithm.moving_average_alpha = 1.0"),
        ({"moving_average_alpha": "high"}, "algorithm.moving_average_alpha = 'high'"),
        ({"bifurcation_window": 0}, "algorithm.bifurcation_window = 0"),
        ({"window": True}, "algorithm.window = True"),
        ({"warmup_rounds": -1}, "algorithm.warmup_rounds = -1"),
    ],
)
def test_bad_settings_name_the_key_and_the_fix(table: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)) as error:
        AdaptiveSyncSettings.from_tables(table)
    assert "set" in str(error.value)


def test_pod_env_hyperparameters_parse_and_reject() -> None:
    env = {"initial_sync_frequency": "4", "MOVING_AVERAGE_ALPHA": "0", "bifurcation_window": "1", "warmup_rounds": "0"}
    assert SednaContext.from_env(env).hyperparameters == {
        "initial_sync_frequency": 4,
        "moving_average_alpha": 0.0,
        "bifurcation_window": 1,
        "warmup_rounds": 0,
    }
    with pytest.raises(ConfigError, match="warmup_rounds='-2'"):
        SednaContext.from_env({"warmup_rounds": "-2"})


def test_pod_env_names_set_the_algorithm_keys() -> None:
    names = ("initial_sync_frequency", "moving_average_alpha", "bifurcation_window", "warmup_rounds")
    assert {name: HYPERPARAMETER_KEYS[name] for name in names} == {name: f"algorithm.{name}" for name in names}
    too_high = SednaContext.from_env({"moving_average_alpha": "1.5"}).hyperparameters  # a float: the parser passes it
    with pytest.raises(ConfigError, match="pod env moving_average_alpha"):
        AdaptiveSyncSettings.from_tables(too_high)


def test_demo_config_names_the_algorithm_everywhere() -> None:
    config = load_config_file(QUICKSTART / "adaptive_sync.toml")
    assert {config[section]["type"] for section in ("algorithm", "clients", "server")} == {"adaptive_sync"}
    assert AdaptiveSyncSettings.from_tables(config["algorithm"]).initial_sync_frequency == 4


# Real runs


def epochs_started(trainer_log: str) -> int:
    return len(re.findall(r"Started training epoch \d+", trainer_log))


@pytest.mark.slow
def test_quickstart_with_env_lowers_tau_and_trainers_run_it(quickstart_job: Path, tmp_path: Path) -> None:
    """fedavg.toml made adaptive by the pods' env alone; 10 rounds, tau 4 at first, W = 1, no averaging."""
    env = {
        "aggregation_algorithm": "adaptive_sync",
        "initial_sync_frequency": "4",
        "moving_average_alpha": "0",
        "bifurcation_window": "1",
        "target_accuracy": "1.0",  # all 10 rounds
    }
    edit_job(quickstart_job, "/config/fedavg.toml", None, env)
    workdir = tmp_path / "run"
    result = run_job(quickstart_job, workdir)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = json.loads((workdir / "summary.json").read_text())
    metrics = json.loads((Path(summary["model_url"]).parent / "metrics.json").read_text())

    assert summary["rounds"] == 10 and metrics["algorithm"] == "adaptive_sync"
    history = metrics["sync_history"]
    taus = [entry["sync_frequency"] for entry in history]
    assert [entry["round"] for entry in history] == list(range(1, 11))
    assert taus[0] == 4 and taus[-1] < 4, taus  # tau dropped during the run
    assert all(later in (earlier, -(-earlier // 2)) for earlier, later in pairwise(taus)), taus
    # The recorded rates, replayed through the rule, give the very taus the aggregator sent.
    assert replay(SyncFrequency(tau=4, window=1), [entry["consistency_rate"] for entry in history]) == taus
    # What the trainers ran, as they reported it and as their logs show.
    assert all(entry["trainer_epochs"] == {"digits-edge1": tau, "digits-edge2": tau} for entry, tau in zip(history, taus))
    for trainer in ("trainer-1", "trainer-2"):
        assert epochs_started((workdir / trainer / "worker.log").read_text()) == sum(taus)


@pytest.mark.slow
@pytest.mark.extended
def test_plain_plato_sends_tau_to_simulated_clients(tmp_path: Path) -> None:
    """`plato -c` with no Sedna env: Plato's own server process spawns the clients."""
    base = tmp_path / "base"
    write_fake_mnist(base)
    config = write_plain_config(tmp_path / "config.toml", free_port(), rounds=3, partition_size=100)
    text = config.read_text().replace('type = "simple"', 'type = "adaptive_sync"')
    text = text.replace('type = "fedavg"', 'type = "adaptive_sync"\ninitial_sync_frequency = 2\nmoving_average_alpha = 0.0\nwindow = 1')
    text = text.replace("[server]\n", '[server]\ntype = "adaptive_sync"\n')
    config.write_text(text + '\n[results]\ntypes = "round, accuracy, sync_frequency, consistency_rate"\n')
    log = tmp_path / "run.log"
    process = start_run(plato_sedna_command(config, base), tmp_path, log)
    try:
        returncode = wait_run(process, 240)
    except subprocess.TimeoutExpired:
        pytest.fail(f"no exit within 240 s; log tail:\n{log.read_text()[-3000:]}")
    reap_clients(process)
    output = log.read_text()
    assert returncode == 0, output[-3000:]

    rows = results_csv(base, process.pid).read_text().splitlines()
    assert rows[0] == "round,accuracy,sync_frequency,consistency_rate"
    taus = [int(row.split(",")[2]) for row in rows[1:]]
    assert len(taus) == 3 and taus[0] == 2 and all(0 <= float(row.split(",")[3]) <= 1 for row in rows[1:])
    sent = [int(tau) for tau in re.findall(r"Sync frequency from the aggregator: (\d+) local epoch", output)]
    assert sorted(sent) == sorted(taus * 2)  # each of the two clients, every round
    assert epochs_started(output) == 2 * sum(taus)
