"""Loading TOML/YAML Plato configs, overlaying the Sedna context, and writing TOML back."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import pytest
from plato.config import TomlConfigLoader
from support.sedna_env import AGGREGATOR_ENV, TRAINER_ENV

from plato_sedna.config import load_config_file, resolve_config, write_config
from plato_sedna.context import SednaContext
from plato_sedna.errors import ConfigError

CONFIGS = Path(__file__).parent / "data" / "configs"
UPSTREAM = Path(__file__).parent / "data" / "upstream"

ROLE_ENVS = {"aggregator": AGGREGATOR_ENV, "trainer": TRAINER_ENV, "plain": {}}
SECRETS = ("AKIA-VERY-PRIVATE", "hunter2-secret", "minio.example")


def resolve(path: str | Path, env: dict[str, str]) -> dict:
    return resolve_config(load_config_file(CONFIGS / path), SednaContext.from_env(env))


def all_values(value: object) -> list[object]:
    if isinstance(value, dict):
        return [*value.keys(), *(v for item in value.values() for v in all_values(item))]
    if isinstance(value, list):
        return [v for item in value for v in all_values(item)]
    return [value]


# --- loading ---------------------------------------------------------------


def test_toml_and_yaml_load_the_same_sections() -> None:
    from_toml = load_config_file(CONFIGS / "fedavg.toml")
    from_yaml = load_config_file(str(CONFIGS / "fedavg.yml"))
    assert from_toml.pop("parameters") == {}
    assert from_toml == from_yaml


@pytest.mark.parametrize("role", ["aggregator", "trainer", "plain"])
def test_toml_and_yaml_resolve_to_the_same_dict(role: str) -> None:
    env = {**ROLE_ENVS[role], "epochs": "3"}
    from_toml = resolve("fedavg.toml", env)
    assert from_toml == resolve("fedavg.yml", env)
    assert from_toml == resolve("fedavg_include.yml", env)
    assert from_toml["sedna"]["role"] == role


def test_yaml_include_is_relative_to_the_including_file() -> None:
    config = load_config_file(CONFIGS / "fedavg_include.yml")
    assert config["data"] == load_config_file(CONFIGS / "fedavg_data.yml")


def test_toml_include_and_null() -> None:
    config = load_config_file(CONFIGS / "fedavg_include.toml")
    assert config["trainer"]["rounds"] == 3
    assert config["trainer"]["epochs"] == 5
    assert config["server"]["checkpoint_path"] is None
    assert config["parameters"] == {}


def test_missing_file_says_what_to_pass(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as raised:
        load_config_file(missing)
    assert str(raised.value) == (
        f"Plato config {missing} does not exist; pass an existing TOML or YAML file with -c"
    )


def test_yaml_parse_error_names_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("clients:\n  type: simple\n  per_round: [1, 2\nserver: {}\n")
    with pytest.raises(ConfigError, match=rf"{broken} is not valid YAML at line \d+"):
        load_config_file(broken)


def test_toml_parse_error_names_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[clients]\ntype = simple\n")
    with pytest.raises(ConfigError, match=rf"{broken} .*not valid TOML.*line 2"):
        load_config_file(broken)


def test_missing_yaml_include_names_both_files(tmp_path: Path) -> None:
    including = tmp_path / "main.yml"
    including.write_text("data: !include parts/data.yml\n")
    with pytest.raises(ConfigError, match=rf"{including} includes .*parts/data.yml"):
        load_config_file(including)


def test_cyclic_yaml_include_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("b: !include b.yml\n")
    (tmp_path / "b.yml").write_text("a: !include a.yml\n")
    with pytest.raises(ConfigError, match="in a cycle"):
        load_config_file(tmp_path / "a.yml")


@pytest.mark.parametrize(
    ("text", "message"), [("- clients\n- server\n", "holds list .* not a table"), ("", "is empty")]
)
def test_top_level_must_be_a_table(tmp_path: Path, text: str, message: str) -> None:
    listed = tmp_path / "list.yaml"
    listed.write_text(text)
    with pytest.raises(ConfigError, match=rf"{listed} {message}"):
        load_config_file(listed)


def test_relative_paths_load_from_the_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CONFIGS)
    assert load_config_file("fedavg_include.yml") == load_config_file(CONFIGS / "fedavg.yml")
    assert load_config_file("fedavg_include.toml")["trainer"]["rounds"] == 3


@pytest.mark.parametrize("source", ["fedavg.toml", "fedavg.yml"])
def test_other_suffix_tries_toml_then_yaml(tmp_path: Path, source: str) -> None:
    unsuffixed = tmp_path / "config.conf"
    unsuffixed.write_text((CONFIGS / source).read_text())
    assert load_config_file(unsuffixed) == load_config_file(CONFIGS / source)


def test_other_suffix_that_is_neither_says_so(tmp_path: Path) -> None:
    garbage = tmp_path / "config"
    garbage.write_text("a = [\n: - {\n")
    with pytest.raises(ConfigError, match="is neither TOML .* nor YAML"):
        load_config_file(garbage)


# --- resolving: sections and hyperparameters ------------------------------


def test_resolve_returns_a_new_dict_and_leaves_raw_alone() -> None:
    raw = load_config_file(CONFIGS / "fedavg.yml")
    before = copy.deepcopy(raw)
    resolved = resolve_config(raw, SednaContext.from_env({**TRAINER_ENV, "learning_rate": "0.1"}))
    assert raw == before
    assert "parameters" not in raw
    assert resolved["parameters"] == {"optimizer": {"lr": 0.1}}


def test_a_section_that_is_not_a_table_is_named() -> None:
    raw = load_config_file(CONFIGS / "fedavg.yml")
    raw["trainer"] = "basic"
    with pytest.raises(ConfigError, match=r"\[trainer\] holds str, not a table"):
        resolve_config(raw, SednaContext())


def test_missing_sections_are_built_from_the_pod_and_plato_defaults() -> None:
    """The proposal's sdd_rcnn.yml comments [server] out: Sedna gives the address."""
    raw = load_config_file(UPSTREAM / "proposal" / "sdd_rcnn.yml")
    assert "server" not in raw
    trainer = resolve_config(raw, SednaContext.from_env(TRAINER_ENV))
    assert trainer["server"]["address"] == TRAINER_ENV["AGG_IP"]
    aggregator = resolve_config(raw, SednaContext.from_env(AGGREGATOR_ENV))
    assert aggregator["server"]["port"] == int(AGGREGATOR_ENV["AGG_BIND_PORT"])
    plain = resolve_config(raw, SednaContext())
    assert (plain["server"]["address"], plain["server"]["port"]) == ("127.0.0.1", 8000)
    assert plain["trainer"]["type"] == "yolov5"  # the file's keys stay


def test_a_config_with_nothing_takes_every_section_from_the_pod() -> None:
    resolved = resolve_config({}, SednaContext.from_env({**TRAINER_ENV, "exit_round": "3", "epochs": "2"}))
    trainer = resolved["trainer"]
    assert (trainer["rounds"], trainer["epochs"], trainer["type"]) == (3, 2, "basic")
    assert trainer["model_name"] == "sednaModelResource"
    assert resolved["data"]["datasource"] == "sednaDataResource"
    assert resolved["algorithm"]["type"] == "fedavg"
    assert resolved["clients"]["type"] == "simple"


def test_what_nothing_gives_is_an_error_naming_where_to_set_it() -> None:
    with pytest.raises(ConfigError, match="nothing gives trainer.rounds: set the rounds"):
        resolve_config({}, SednaContext.from_env(TRAINER_ENV))
    with pytest.raises(ConfigError, match="nothing gives data.datasource"):
        resolve_config({"trainer": {"rounds": 1}}, SednaContext())


def test_plain_role_adds_parameters_and_a_sedna_table_only() -> None:
    raw = load_config_file(CONFIGS / "fedavg.yml")
    resolved = resolve_config(raw, SednaContext())
    assert resolved.pop("parameters") == {}
    assert resolved.pop("sedna") == {"role": "plain", "transmitter": "ws", "connect_timeout": 300.0}
    assert resolved == raw


def test_env_hyperparameters_win_over_the_file() -> None:
    env = {
        "EPOCHS": "3",
        "Learning_Rate": "0.05",
        "momentum": "0.9",
        "weight_decay": "0.0005",
        "per_round": "1",
        "batch_size": "8",
        "rounds": "7",
        "target_accuracy": "0.8",
        "optimizer": "Adam",
        "delta_loss": "0.01",
        "cut_layer": "layer3",
        "epsilon": "1.5",
        "aggregation_algorithm": "fedavg",
    }
    config = resolve("fedavg.toml", env)
    assert config["trainer"] == {
        **load_config_file(CONFIGS / "fedavg.toml")["trainer"],
        "epochs": 3,
        "batch_size": 8,
        "rounds": 7,
        "target_accuracy": 0.8,
        "optimizer": "Adam",
    }
    assert config["parameters"] == {
        "optimizer": {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.0005}
    }
    assert config["clients"]["per_round"] == 1
    assert config["server"]["stop_condition"] == {"delta_loss": 0.01}
    assert config["algorithm"] == {"type": "fedavg", "cut_layer": "layer3", "epsilon": 1.5}
    assert config["server"]["type"] == "fedavg"  # the catalogue sets all three types
    assert config["clients"]["type"] == "simple"


def test_mistnet_also_sets_the_server_and_client_types() -> None:
    config = resolve("fedavg.toml", {"aggregation_algorithm": "mistnet", "cut_layer": "4"})
    assert config["algorithm"] == {"type": "mistnet", "cut_layer": 4}
    assert config["clients"]["type"] == "mistnet"
    assert config["server"]["type"] == "mistnet"


def test_overrides_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="plato_sedna.config"):
        resolve("fedavg.toml", {"epochs": "3", "learning_rate": "0.1"})
    messages = [record.getMessage() for record in caplog.records]
    assert "trainer.epochs = 3 (from env epochs, file had 5)" in messages
    assert "parameters.optimizer.lr = 0.1 (from env learning_rate, file had none)" in messages


def test_bad_hyperparameter_env_stops_before_resolving() -> None:
    with pytest.raises(ConfigError, match="epochs='ten' is not a valid positive integer"):
        resolve("fedavg.toml", {"epochs": "ten"})


def test_override_through_a_non_table_is_refused() -> None:
    raw = load_config_file(CONFIGS / "fedavg.toml")
    raw["parameters"]["optimizer"] = "SGD"
    with pytest.raises(ConfigError, match="parameters.optimizer.*must be a table"):
        resolve_config(raw, SednaContext.from_env({"learning_rate": "0.1"}))


# --- resolving: roles -------------------------------------------------------


def test_aggregator_overlay() -> None:
    config = resolve("fedavg.toml", AGGREGATOR_ENV)
    assert config["server"] == {
        "address": "0.0.0.0",
        "port": 7363,
        "random_seed": 1,
        "disable_clients": True,
        "do_test": False,
    }
    assert config["clients"] == {
        "type": "simple",
        "total_clients": 2,
        "per_round": 2,
        "do_test": True,
        "comm_simulation": False,
    }
    assert config["data"]["sampler"] == "iid"


def test_aggregator_tests_itself_when_given_a_test_set() -> None:
    config = resolve("fedavg.toml", {**AGGREGATOR_ENV, "TEST_DATASET_URL": "/data/test.txt"})
    assert config["server"]["do_test"] is True
    assert config["clients"]["do_test"] is False
    assert config["sedna"]["test_url"] == "/data/test.txt"


def test_per_round_is_capped_to_the_trainers_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="plato_sedna.config"):
        config = resolve("fedavg.toml", {**AGGREGATOR_ENV, "PER_ROUND": "5"})
    assert config["clients"]["per_round"] == 2
    assert config["clients"]["total_clients"] == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["clients.per_round 5 is more than the 2 trainers of this job; using 2"]


def test_participants_count_sets_total_clients_and_default_per_round() -> None:
    raw = load_config_file(CONFIGS / "fedavg.toml")
    del raw["clients"]["per_round"]
    env = {**AGGREGATOR_ENV, "PARTICIPANTS_COUNT": "4"}
    config = resolve_config(raw, SednaContext.from_env(env))
    assert config["clients"]["total_clients"] == 4
    assert config["clients"]["per_round"] == 4


def test_without_participants_count_the_file_total_is_kept() -> None:
    env = {k: v for k, v in AGGREGATOR_ENV.items() if k != "PARTICIPANTS_COUNT"}
    config = resolve("fedavg.toml", env)
    assert config["clients"]["total_clients"] == 2
    assert "participants_count" not in config["sedna"]


def test_without_any_trainer_count_the_aggregator_refuses() -> None:
    raw = load_config_file(CONFIGS / "fedavg.toml")
    del raw["clients"]["total_clients"]
    with pytest.raises(ConfigError, match="PARTICIPANTS_COUNT is not set, the job.s trainingWorkers .*total_clients"):
        resolve_config(raw, SednaContext.from_env({"AGG_BIND_PORT": "7363"}))


def test_forced_aggregator_without_bind_port_keeps_the_file_port() -> None:
    config = resolve("fedavg.toml", {"SEDNA_ROLE": "aggregator"})
    assert config["server"]["address"] == "0.0.0.0"
    assert config["server"]["port"] == 8000


def test_trainer_overlay() -> None:
    config = resolve("fedavg.yml", {**TRAINER_ENV, "AGG_PORT": "30363"})
    assert config["server"] == {
        "address": "surface-defect-aggregation.default",
        "port": 30363,
        "random_seed": 1,
    }
    assert config["clients"] == {
        "type": "simple",
        "total_clients": 2,
        "per_round": 2,
        "do_test": True,
        "comm_simulation": False,
    }
    assert config["data"]["sampler"] == "all_inclusive"


def test_trainer_keeps_the_sampler_of_other_datasources() -> None:
    raw = load_config_file(CONFIGS / "fedavg.toml")
    raw["data"]["datasource"] = "MNIST"
    config = resolve_config(raw, SednaContext.from_env(TRAINER_ENV))
    assert config["data"]["sampler"] == "iid"


def test_trainer_without_agg_ip_finds_the_aggregator_service() -> None:
    env = {k: v for k, v in TRAINER_ENV.items() if k != "AGG_IP"}
    config = resolve("fedavg.toml", {**env, "SEDNA_ROLE": "trainer"})
    assert config["server"]["address"] == "surface-defect-aggregation.default"
    assert config["server"]["port"] == 7363


def test_trainer_that_cannot_find_the_aggregator_refuses() -> None:
    with pytest.raises(ConfigError, match="AGG_IP is not set and JOB_NAME/NAMESPACE are not"):
        resolve("fedavg.toml", {"SEDNA_ROLE": "trainer", "JOB_NAME": "job"})


# --- resolving: the [sedna] table -------------------------------------------


def test_sedna_table_holds_what_is_set_and_no_secret() -> None:
    config = resolve("fedavg.toml", TRAINER_ENV)
    assert config["sedna"] == {
        "role": "trainer",
        "job_name": "surface-defect",
        "namespace": "default",
        "worker_name": "trainworker-ab12c",
        "dataset_name": "edge1-surface-defect-dataset",
        "model_name": "surface-defect-model",
        "identity": "edge1-surface-defect-dataset",
        "train_url": "/home/data/data/1.txt",
        "participants_count": 2,
        "connect_timeout": 300.0,
        "lc_server": "http://localhost:9100",
        "data_path_prefix": "/home/data",
        "transmitter": "ws",
    }


@pytest.mark.parametrize("role", ["aggregator", "trainer"])
def test_secrets_never_reach_the_resolved_config(role: str, tmp_path: Path) -> None:
    config = resolve("fedavg.toml", ROLE_ENVS[role])
    values = [str(value) for value in all_values(config)]
    written = write_config(config, tmp_path / "resolved.toml").read_text()
    for secret in SECRETS:
        assert not any(secret in value for value in values)
        assert secret not in written


def test_file_sedna_keys_are_kept_where_the_env_is_silent() -> None:
    sedna = resolve("sedna_table.toml", AGGREGATOR_ENV)["sedna"]
    assert sedna["connect_timeout"] == 600.0
    assert sedna["note"] == "kept"
    assert sedna["model_url"] == "/home/data/model/model.pth"
    assert sedna["transmitter"] == "s3"
    explicit = resolve("sedna_table.toml", {**AGGREGATOR_ENV, "CONNECT_TIMEOUT": "30"})
    assert explicit["sedna"]["connect_timeout"] == 30.0


# --- writing ----------------------------------------------------------------


@pytest.mark.parametrize("role", ["aggregator", "trainer", "plain"])
def test_written_config_reads_back_equal(role: str, tmp_path: Path) -> None:
    config = resolve("fedavg_include.toml", {**ROLE_ENVS[role], "cut_layer": "4"})
    written = write_config(config, tmp_path / "deep" / "dir" / "resolved.toml")
    assert written == tmp_path / "deep" / "dir" / "resolved.toml"
    assert TomlConfigLoader(written).load() == config
    assert load_config_file(written) == config
    assert sorted(p.name for p in written.parent.iterdir()) == ["resolved.toml"]


def test_written_values_of_every_kind_read_back_equal(tmp_path: Path) -> None:
    config = {
        "general": {"debug": False, "base_path": None},
        "clients": {"per_round": 2, "ratio": 0.25, "tiny": 1e-7, "huge": float("inf")},
        "data": {"classes": ["cat", "dog"], "mixed": [1, "two", None, 3.0], "empty": []},
        "trainer": {"nested": {"deeper": {"name": "héllo \"quoted\"\n", "flag": True}}},
        "results": {"types": [[1, 2], [3]], "stages": [{"epochs": 1}, {"epochs": 2}]},
        "server": {},
        "top level key": "with spaces and dots.in.it",
    }
    written = write_config(config, tmp_path / "all.toml")
    assert TomlConfigLoader(written).load() == config


def test_write_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    target.write_text("stale = true\n")
    write_config({"fresh": 1}, target)
    assert TomlConfigLoader(target).load() == {"fresh": 1}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"trainer": {"stages": (1, 2)}}, "trainer.stages holds a tuple"),
        ({"trainer": {"when": Path("x")}}, "trainer.when holds a PosixPath"),
        ({"clients": {1: "one"}}, r"config key 1 in \[clients\] is not a string"),
        ({"data": {"label": "smile 😀"}}, "cannot be written as TOML that Plato reads back"),
        ({"data": {"include": "other.toml"}}, "cannot be written as TOML that Plato reads back"),
        ({"data": {"pair": [{"value": 1}]}}, "config key data.pair does not read back"),
    ],
)
def test_unwritable_configs_are_refused_and_leave_no_file(
    tmp_path: Path, config: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        write_config(config, tmp_path / "config.toml")
    assert list(tmp_path.iterdir()) == []


def test_a_trainer_takes_the_aggregators_job_wide_env() -> None:
    """Sedna's surface-defect job sets exit_round on the aggregator only; the discussion's, MistNet's keys."""
    from plato_sedna.config import with_job_wide_hyperparameters
    from plato_sedna.resources import JobFacts

    job = JobFacts(
        "FederatedLearningJob default/j", 2, {},
        aggregator_env=(("exit_round", "3"), ("aggregation_algorithm", "mistnet"), ("epochs", "9")),
    )
    trainer = with_job_wide_hyperparameters(SednaContext.from_env({**TRAINER_ENV, "epochs": "1"}), job)
    assert dict(trainer.hyperparameters) == {"exit_round": 3, "aggregation_algorithm": "mistnet", "epochs": 1}
    aggregator = SednaContext.from_env(AGGREGATOR_ENV)
    assert with_job_wide_hyperparameters(aggregator, job) is aggregator
    with pytest.raises(ConfigError, match="the aggregation worker's env: exit_round='x'"):
        bad = JobFacts("FederatedLearningJob default/j", 2, {}, aggregator_env=(("exit_round", "x"),))
        with_job_wide_hyperparameters(SednaContext.from_env(TRAINER_ENV), bad)
