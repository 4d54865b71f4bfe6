"""The aggregation_algorithm catalogue: what each name sets, what pods refuse, and each one running a job.

The e2e runs choose the algorithm only through the ``aggregation_algorithm`` env of
the quickstart job's pod templates (plus ``cut_layer`` where the algorithm cuts the
model), through `plato-sedna run`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import QUICKSTART
from support.workers import clean_env, free_port
from test_quickstart_e2e import run_job

from plato_sedna import algorithm_catalog
from plato_sedna.algorithm_catalog import CATALOG, AggregationAlgorithm
from plato_sedna.config import load_config_file, resolve_config
from plato_sedna.context import SednaContext
from plato_sedna.errors import ConfigError
from plato_sedna.tools import validate

AGGREGATOR_ENV = {"AGG_BIND_PORT": "7363", "PARTICIPANTS_COUNT": "2", "TEST_DATASET_URL": "data/test.txt"}
TRAINER_ENV = {"AGG_IP": "127.0.0.1", "PARTICIPANTS_COUNT": "2", "DATASET_NAME": "digits-edge1"}
ROLE_ENVS = {"aggregator": AGGREGATOR_ENV, "trainer": TRAINER_ENV}
PLATO_NAMES = {"fedavg", "fedavg_personalized", "split_learning", "fedavg_lora", "fedavg_cross_silo",
               "fedavg_gan", "fedavg_mpc_additive", "fedavg_mpc_shamir", "fedavg_he"}
PLUGIN_NAMES = {"mistnet", "hf_fedavg", "adaptive_freezing", "adaptive_sync"}
REFUSED_IN_PODS: set[str] = set()


def resolve(env: dict[str, str], config: Path = QUICKSTART / "fedavg.toml") -> dict:
    return resolve_config(load_config_file(config), SednaContext.from_env(env))


def plato_cli(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """The installed `plato` console script (the pods' entrypoint) on the quickstart config."""
    script = Path(sys.executable).with_name("plato")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "plato_sedna"]
    return subprocess.run(
        [*command, "-c", str(QUICKSTART / "fedavg.toml")],
        cwd=tmp_path, env=clean_env(**env), capture_output=True, text=True, timeout=180, check=False,
    )


# ---------------------------------------------------------------------------
# The mapping


def test_the_catalogue_holds_every_plato_algorithm_and_the_plugins() -> None:
    assert set(CATALOG) == PLATO_NAMES | PLUGIN_NAMES
    assert {name for name, entry in CATALOG.items() if not entry.runs_in_pods} == REFUSED_IN_PODS
    assert all(entry.description and "\n" not in entry.description for entry in CATALOG.values())


@pytest.mark.parametrize(
    ("name", "server", "client", "algorithm"),
    [
        ("fedavg", "fedavg", "simple", "fedavg"),
        ("fedavg_personalized", "fedavg_personalized", "fedavg_personalized", "fedavg_personalized"),
        ("split_learning", "split_learning", "split_learning", "split_learning"),
        ("mistnet", "mistnet", "mistnet", "mistnet"),
        ("hf_fedavg", "fedavg", "simple", "hf_fedavg"),
        ("adaptive_freezing", "adaptive_freezing", "adaptive_freezing", "adaptive_freezing"),
        ("adaptive_sync", "adaptive_sync", "adaptive_sync", "adaptive_sync"),
    ],
)
def test_the_env_alone_sets_the_three_types_in_both_roles(name: str, server: str, client: str, algorithm: str) -> None:
    entry = CATALOG[name]
    if algorithm_catalog.missing_components(entry):
        pytest.skip(f"{name}'s components are not registered yet")
    for role, env in ROLE_ENVS.items():
        config = resolve({**env, "aggregation_algorithm": name, "cut_layer": "relu3"})
        assert (config["server"]["type"], config["clients"]["type"], config["algorithm"]["type"]) == (
            server, client, algorithm), role


def test_plato_components_of_each_runnable_entry_are_in_plato_registries() -> None:
    from plato.algorithms import registry as algorithms
    from plato.clients import registry as clients

    for entry in CATALOG.values():
        if entry.origin == "Plato 1.41":
            assert entry.algorithm in algorithms.registered_algorithms, entry.name
            assert entry.client in clients.registered_clients, entry.name
            assert algorithm_catalog.missing_components(entry) == [], entry.name


def test_split_learning_sets_what_plato_asserts_and_cuts_at_the_env_layer() -> None:
    aggregator = resolve({**AGGREGATOR_ENV, "aggregation_algorithm": "split_learning", "cut_layer": "relu3"})
    trainer = resolve({**TRAINER_ENV, "aggregation_algorithm": "split_learning", "cut_layer": "relu3"})
    for config in (aggregator, trainer):
        assert config["clients"]["per_round"] == 1  # Plato's split-learning server asserts it
        assert config["trainer"]["type"] == "sedna_split_learning"
        assert config["parameters"]["model"]["cut_layer"] == "relu3"
    assert trainer["clients"]["do_test"] is False  # its client asserts it; the aggregator tests
    assert aggregator["server"]["do_test"] is True


def test_split_learning_without_a_cut_layer_or_an_aggregator_test_set_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"split_learning cuts the model at a layer.*cut_layer env"):
        resolve({**TRAINER_ENV, "aggregation_algorithm": "split_learning"})
    without_test_set = {key: value for key, value in AGGREGATOR_ENV.items() if key != "TEST_DATASET_URL"}
    with pytest.raises(ConfigError, match=r"tests the whole model itself.*TEST_DATASET_URL"):
        resolve({**without_test_set, "aggregation_algorithm": "split_learning", "cut_layer": "relu3"})


def test_fedavg_lora_needs_lora_adapters(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"fedavg_lora sends only LoRA adapters.*\[parameters.lora\].*hf_fedavg"):
        resolve({**TRAINER_ENV, "aggregation_algorithm": "fedavg_lora"})
    with_lora = tmp_path / "lora.toml"
    with_lora.write_text((QUICKSTART / "fedavg.toml").read_text() + "\n[parameters.lora]\nr = 4\n")
    config = resolve({**TRAINER_ENV, "aggregation_algorithm": "fedavg_lora"}, with_lora)
    # Plato has no fedavg_lora client: the simple one, with Plato's LoRA algorithm and server entry
    assert (config["server"]["type"], config["clients"]["type"], config["algorithm"]["type"]) == (
        "fedavg_lora", "simple", "fedavg_lora")


def test_an_entry_that_cannot_run_in_pods_is_refused_there_with_its_reason() -> None:
    # Every catalogue algorithm runs in pods now; the refusal stays for entries that cannot.
    entry = AggregationAlgorithm("demo", "d", "fedavg", "simple", "fedavg", not_in_pods="it needs X. Use fedavg")
    with pytest.raises(ConfigError, match=r"aggregation_algorithm = 'demo' cannot run in Sedna pods: it needs X. Use fedavg"):
        algorithm_catalog.check_runs_in_pods(entry, "aggregation_algorithm")
    algorithm_catalog.check_runs_in_pods(CATALOG["fedavg"], "aggregation_algorithm")  # no error


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as raised:
        resolve({**TRAINER_ENV, "aggregation_algorithm": "fedprox"})
    message = str(raised.value)
    assert "aggregation_algorithm='fedprox' is not an aggregation algorithm" in message
    assert all(name in message for name in CATALOG)


def test_a_component_missing_from_the_registries_is_named() -> None:
    entry = AggregationAlgorithm("not_installed", "a plugin not installed", "no_server", "no_client", "no_algorithm")
    assert algorithm_catalog.missing_components(entry) == [
        "server.type = 'no_server'", "clients.type = 'no_client'", "algorithm.type = 'no_algorithm'"]
    with pytest.raises(ConfigError, match=r"'not_installed' needs server.type = 'no_server' and .* do not hold"):
        algorithm_catalog.check_available(entry)


def test_split_learning_cuts_a_model_without_forward_from_and_keeps_its_state_dict() -> None:
    import torch
    from plato.models import lenet5

    from plato_sedna.trainers.split_learning import make_splittable

    model = lenet5.Model(num_classes=10).eval()
    keys = list(model.state_dict())
    make_splittable(model, "relu3")
    images = torch.rand(4, 1, 28, 28)
    # lenet5's forward ends in a log_softmax outside its layers: the same loss and predictions
    assert torch.allclose(torch.log_softmax(model.forward_from(model.forward_to(images)), 1), model(images))
    assert model.cut_layer == "relu3" and list(model.state_dict()) == keys  # nothing registered
    with pytest.raises(ConfigError, match=r"cut_layer env\) = 'fc5' is not a layer of Model with layers after it; .*7:relu3"):
        make_splittable(lenet5.Model(num_classes=10), "fc5")


# ---------------------------------------------------------------------------
# The real `plato` CLI and `plato-sedna validate`


def test_plato_cli_stops_an_unknown_name_at_pod_start(tmp_path: Path) -> None:
    result = plato_cli(tmp_path, AGG_BIND_PORT=str(free_port()), PARTICIPANTS_COUNT="2", aggregation_algorithm="fedprox")

    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("plato: error: aggregation_algorithm='fedprox' is not an aggregation algorithm")
    assert all(name in last for name in CATALOG)
    assert "Traceback" not in result.stderr


def set_env(job_yaml: Path, env: dict[str, str]) -> None:
    """Set ``env`` in every pod template of the job (replacing variables of the same name)."""
    documents = list(yaml.safe_load_all(job_yaml.read_text()))
    job = next(document for document in documents if document["kind"] == "FederatedLearningJob")
    templates = [job["spec"]["aggregationWorker"]["template"]] + [w["template"] for w in job["spec"]["trainingWorkers"]]
    for template in templates:
        for container in template["spec"]["containers"]:
            kept = [variable for variable in container.get("env", []) if variable["name"] not in env]
            container["env"] = kept + [{"name": name, "value": value} for name, value in env.items()]
    job_yaml.write_text(yaml.safe_dump_all(documents, sort_keys=False))


def test_validate_reports_an_unknown_algorithm_in_a_job(quickstart_job: Path, capsys) -> None:
    set_env(quickstart_job, {"aggregation_algorithm": "fedprox"})
    assert validate.main([str(quickstart_job)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"spec.aggregationWorker.template.spec.containers\[0\].env\[\d\]: aggregation_algorithm='fedprox' "
                     r"is not an aggregation algorithm .*fedavg_personalized", out), out

    set_env(quickstart_job, {"aggregation_algorithm": "fedavg_personalized"})
    assert validate.main([str(quickstart_job)]) == 0


# ---------------------------------------------------------------------------
# Each algorithm runs a short job


# name -> extra env it needs beside aggregation_algorithm, and the Plato rounds of a short job
E2E_RUNS = {
    "fedavg": ({}, 1),
    "fedavg_personalized": ({}, 1),
    # one trainer's pass is two Plato rounds: its features up, then gradients down and weights up
    "split_learning": ({"cut_layer": "relu3"}, 2),
    "mistnet": ({"cut_layer": "relu3"}, 1),
    "hf_fedavg": ({}, 1),
    "adaptive_freezing": ({}, 1),
    "adaptive_sync": ({}, 1),
}


def test_every_algorithm_that_runs_in_pods_has_a_short_job() -> None:
    runnable = {name for name, entry in CATALOG.items() if entry.runs_in_pods}
    # fedavg_lora: the Hugging Face demo below; fedavg_he: test_he_context.py (its Secret too);
    # fedavg_mpc_*: test_mpc_store.py (a local store, and the S3 transmitter's); fedavg_cross_silo:
    # test_cross_silo.py; fedavg_gan: test_gan.py (a DCGAN on 64x64 RGB digits)
    own_tests = {"fedavg_lora", "fedavg_he", "fedavg_mpc_additive", "fedavg_mpc_shamir", "fedavg_cross_silo", "fedavg_gan"}
    assert runnable == set(E2E_RUNS) | own_tests


# Rounds a job runs beyond its stop condition: fedavg_personalized's personalization round.
PLATO_ROUNDS = {"fedavg_personalized": 2}


def run_algorithm(
    job_yaml: Path, workdir: Path, name: str, env: dict[str, str], rounds: int, ran: int | None = None
) -> tuple[dict, dict]:
    set_env(job_yaml, {"aggregation_algorithm": name, "rounds": str(rounds), **env})
    result = run_job(job_yaml, workdir)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "succeeded" and summary["rounds"] == (ran or rounds)
    assert {worker["exit_code"] for worker in summary["workers"].values()} == {0}
    entry = CATALOG[name]
    for worker in summary["workers"]:
        resolved = tomllib.loads((workdir / worker / "runtime" / "config.resolved.toml").read_text())
        assert (resolved["server"]["type"], resolved["clients"]["type"], resolved["algorithm"]["type"]) == (
            entry.server, entry.client, entry.algorithm), worker
    logs = {worker: (workdir / worker / "worker.log").read_text() for worker in summary["workers"]}
    assert f"Algorithm: {entry.algorithm}" in logs["aggregator"]
    assert all(f"Client: {entry.client}" in logs[w] for w in logs if w.startswith("trainer"))
    return summary, logs


# CI's slow run takes these two; the others have their own end-to-end tests
# (quickstart, MistNet, Hugging Face demo, adaptive algorithms) and run with -m extended.
CI_SLOW_RUNS = ("fedavg_personalized", "split_learning")


def _extended_unless_ci(name: str) -> list:
    return [] if name in CI_SLOW_RUNS else [pytest.mark.extended]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=[pytest.mark.slow, *_extended_unless_ci(name)])  # every job is a slow test
        for name in E2E_RUNS
    ],
)
def test_each_algorithm_runs_a_short_job(name: str, quickstart_job: Path, tmp_path: Path) -> None:
    if algorithm_catalog.missing_components(CATALOG[name]):
        pytest.skip(f"{name}'s server/client/algorithm are not registered yet (another developer's work)")
    env, rounds = E2E_RUNS[name]
    summary, logs = run_algorithm(quickstart_job, tmp_path / "run", name, env, rounds, PLATO_ROUNDS.get(name, rounds))

    assert Path(summary["model_url"]).is_file()
    if name == "split_learning":
        assert "Weights received, start testing accuracy." in logs["aggregator"]  # a whole pass completed
    elif name == "fedavg_personalized":
        assert "Stop condition met after round 1 (rounds); one personalization round first" in logs["aggregator"]
        assert summary["stop_reason"] == "rounds" and summary["accuracy"] >= 0.3
    else:
        assert summary["accuracy"] >= 0.3  # one round on digits: well above chance (0.1)


@pytest.mark.slow
@pytest.mark.extended
def test_split_learning_learns_over_more_passes(quickstart_job: Path, tmp_path: Path) -> None:
    env = {"cut_layer": "relu3", "batch_size": "128", "epochs": "5"}
    summary, _ = run_algorithm(quickstart_job, tmp_path / "run", "split_learning", env, 30)

    history = json.loads((Path(summary["model_url"]).parent / "metrics.json").read_text())["history"]
    accuracies = [record["accuracy"] for record in history]
    # Each trainer keeps its own front (Plato shares none between them), so the aggregator's test
    # of the latest trainer's front with its back is noisy from pass to pass: judge the best one.
    assert max(accuracies) >= 0.3, accuracies  # chance: 0.1


@pytest.mark.slow
def test_fedavg_lora_runs_the_huggingface_demo_sending_adapters_only(tmp_path: Path, tmp_path_factory) -> None:
    import runpy

    from test_huggingface_demo import DEMO, LORA_TABLE, demo_job

    corpus = tmp_path_factory.mktemp("topics")
    runpy.run_path(str(DEMO / "prepare_data.py"))["prepare"](corpus)
    job = demo_job(tmp_path / "job", corpus, rounds=1, extra_config=LORA_TABLE)
    _, logs = run_algorithm(job, tmp_path / "run", "fedavg_lora", {}, 1)

    full_size = (corpus / "tiny-bert" / "model.safetensors").stat().st_size
    received = [float(mb) for mb in re.findall(r"Received ([\d.]+) MB of payload data", logs["aggregator"])]
    assert received and max(received) * 2**20 < full_size / 10
