"""SednaContext.from_env: role detection, typed fields, hyperparameter env and its errors."""

from __future__ import annotations

import dataclasses

import pytest
from support.sedna_env import AGGREGATOR_ENV, TRAINER_ENV

from plato_sedna.context import HYPERPARAMETER_NAMES, SednaContext
from plato_sedna.errors import ConfigError


def test_empty_env_is_plain_with_defaults() -> None:
    context = SednaContext.from_env({})
    assert context == SednaContext()
    assert context.role == "plain"
    assert context.agg_port == 7363
    assert context.transmitter == "ws"
    assert context.connect_timeout == 300.0
    assert dict(context.hyperparameters) == {}
    assert context.trainer_identity is None
    assert context.aggregator_host is None


def test_aggregator_env_is_typed() -> None:
    context = SednaContext.from_env(AGGREGATOR_ENV)
    assert context.role == "aggregator"
    assert context.agg_bind_port == 7363
    assert context.participants_count == 2
    assert context.transmitter == "s3"
    assert context.agg_data_path == "s3://sedna/fl/aggregation_data"
    assert context.model_url == "/home/data/model/model.pth"
    assert context.secret_access_key == "hunter2-secret"
    assert context.aggregator_host == "surface-defect-aggregation.default"


def test_trainer_env_is_typed() -> None:
    context = SednaContext.from_env(TRAINER_ENV)
    assert context.role == "trainer"
    assert context.agg_ip == "surface-defect-aggregation.default"
    assert context.agg_port == 7363
    assert context.dataset_name == "edge1-surface-defect-dataset"
    assert context.model_name == "surface-defect-model"
    assert context.train_dataset_url == "/home/data/data/1.txt"
    assert context.lc_server == "http://localhost:9100"
    assert context.data_path_prefix == "/home/data"
    assert context.trainer_identity == "edge1-surface-defect-dataset"


@pytest.mark.parametrize(
    ("env", "role"),
    [
        ({"AGG_IP": "10.0.0.1"}, "trainer"),
        ({"AGG_IP": "10.0.0.1", "AGG_BIND_PORT": "7363"}, "trainer"),
        ({"AGG_BIND_PORT": "7363"}, "aggregator"),
        ({"AGG_BIND_PORT": "7363", "AGG_IP": ""}, "aggregator"),
        ({"AGG_IP": "", "AGG_BIND_PORT": ""}, "plain"),
        ({"JOB_NAME": "job"}, "plain"),
        ({"AGG_IP": "10.0.0.1", "SEDNA_ROLE": "aggregator"}, "aggregator"),
        ({"AGG_BIND_PORT": "7363", "SEDNA_ROLE": "trainer"}, "trainer"),
        ({"AGG_BIND_PORT": "7363", "SEDNA_ROLE": "plain"}, "plain"),
        ({"AGG_BIND_PORT": "7363", "SEDNA_ROLE": ""}, "aggregator"),
        ({"SEDNA_ROLE": "Trainer"}, "trainer"),
    ],
)
def test_role_detection(env: dict[str, str], role: str) -> None:
    assert SednaContext.from_env(env).role == role


def test_unknown_sedna_role_names_the_variable_and_choices() -> None:
    with pytest.raises(ConfigError, match="SEDNA_ROLE='server'.*aggregator, trainer, plain"):
        SednaContext.from_env({"SEDNA_ROLE": "server"})


def test_os_environ_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGG_IP", "10.0.0.1")
    monkeypatch.setenv("EPOCHS", "7")
    context = SednaContext.from_env({})
    assert context.role == "plain"
    assert "epochs" not in context.hyperparameters


def test_identity_falls_back_to_worker_name() -> None:
    context = SednaContext.from_env({"WORKER_NAME": "trainworker-ab12c", "DATASET_NAME": ""})
    assert context.trainer_identity == "trainworker-ab12c"


def test_aggregator_host_falls_back_to_the_service_name() -> None:
    env = {k: v for k, v in TRAINER_ENV.items() if k != "AGG_IP"}
    context = SednaContext.from_env({**env, "SEDNA_ROLE": "trainer"})
    assert context.agg_ip is None
    assert context.aggregator_host == "surface-defect-aggregation.default"
    assert SednaContext.from_env({"JOB_NAME": "job"}).aggregator_host is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AGG_BIND_PORT": "70000"}, "AGG_BIND_PORT='70000' is not a valid port number"),
        ({"AGG_PORT": "http"}, "AGG_PORT='http' is not a valid port number"),
        ({"AGG_PORT": "0"}, "AGG_PORT='0'"),
        ({"PARTICIPANTS_COUNT": "0"}, "PARTICIPANTS_COUNT='0' is not a valid positive integer"),
        ({"PARTICIPANTS_COUNT": "two"}, "PARTICIPANTS_COUNT='two'"),
        ({"TRANSMITTER": "ftp"}, "TRANSMITTER='ftp' is not one of ws, s3"),
        ({"CONNECT_TIMEOUT": "-1"}, "CONNECT_TIMEOUT='-1' is not a valid positive number"),
        ({"CONNECT_TIMEOUT": "soon"}, "CONNECT_TIMEOUT='soon'"),
    ],
)
def test_bad_injected_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SednaContext.from_env(env)


def test_connect_timeout_and_transmitter_parse() -> None:
    context = SednaContext.from_env({"CONNECT_TIMEOUT": "12.5", "TRANSMITTER": "WS"})
    assert context.connect_timeout == 12.5
    assert context.transmitter == "ws"


def test_hyperparameters_are_typed() -> None:
    env = {
        "batch_size": "16",
        "epochs": "3",
        "rounds": "10",
        "per_round": "2",
        "learning_rate": "0.05",
        "momentum": "0",
        "weight_decay": "1e-4",
        "target_accuracy": "1",
        "delta_loss": "0.001",
        "stop_operator": "AND",
        "epsilon": "2.5",
        "optimizer": "Adam",
        "aggregation_algorithm": "mistnet",
        "cut_layer": "4",
        "initial_sync_frequency": "4",
        "moving_average_alpha": "0.9",
        "bifurcation_window": "5",
        "warmup_rounds": "0",
        "trainer_timeout": "20",
        "on_trainer_loss": "Wait",
        "stability_threshold": "0.1",
        "tight_threshold": "0.8",
        "TOTAL_SILOS": "3",
        "local_rounds": "2",
        "exit_round": "3",
    }
    hyperparameters = SednaContext.from_env(env).hyperparameters
    assert dict(hyperparameters) == {
        "batch_size": 16,
        "epochs": 3,
        "rounds": 10,
        "exit_round": 3,
        "per_round": 2,
        "learning_rate": 0.05,
        "momentum": 0.0,
        "weight_decay": 1e-4,
        "target_accuracy": 1.0,
        "delta_loss": 0.001,
        "stop_operator": "and",
        "epsilon": 2.5,
        "optimizer": "Adam",
        "aggregation_algorithm": "mistnet",
        "cut_layer": 4,
        "initial_sync_frequency": 4,
        "moving_average_alpha": 0.9,
        "bifurcation_window": 5,
        "warmup_rounds": 0,
        "trainer_timeout": 20.0,
        "on_trainer_loss": "wait",
        "stability_threshold": 0.1,
        "tight_threshold": 0.8,
        "total_silos": 3,
        "local_rounds": 2,
    }
    assert set(hyperparameters) == set(HYPERPARAMETER_NAMES)


def test_cut_layer_may_be_a_layer_name() -> None:
    context = SednaContext.from_env({"cut_layer": "layer4"})
    assert context.hyperparameters["cut_layer"] == "layer4"


def test_hyperparameter_names_are_case_insensitive() -> None:
    env = {"EPOCHS": "4", "Learning_Rate": "0.1", "batch_size": "", "BATCH_SIZE": "8"}
    hyperparameters = SednaContext.from_env(env).hyperparameters
    assert hyperparameters == {"epochs": 4, "learning_rate": 0.1, "batch_size": 8}


def test_exact_lowercase_name_wins_over_other_casings() -> None:
    env = {"Epochs": "9", "EPOCHS": "4", "epochs": "2"}
    assert SednaContext.from_env(env).hyperparameters["epochs"] == 2
    del env["epochs"]
    assert SednaContext.from_env(env).hyperparameters["epochs"] == 4


def test_unparsable_hyperparameter_names_variable_type_and_fix() -> None:
    with pytest.raises(ConfigError) as raised:
        SednaContext.from_env({"epochs": "ten"})
    assert str(raised.value) == (
        "epochs='ten' is not a valid positive integer; set epochs to a whole number "
        "such as epochs=5 in the pod template's env"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EPOCHS": "ten"}, "EPOCHS='ten' is not a valid positive integer"),
        ({"batch_size": "0"}, "batch_size='0' is not a valid positive integer"),
        ({"rounds": "2.5"}, "rounds='2.5'"),
        ({"learning_rate": "-0.1"}, "learning_rate='-0.1' is not a valid positive number"),
        ({"learning_rate": "inf"}, "learning_rate='inf'"),
        ({"momentum": "-1"}, "momentum='-1' is not a valid non-negative number"),
        ({"target_accuracy": "95"}, r"target_accuracy='95' is not a valid fraction in \(0, 1\]"),
        ({"target_accuracy": "0"}, "target_accuracy='0'"),
        ({"epsilon": "nan"}, "epsilon='nan'"),
        ({"optimizer": "   "}, "optimizer='   '"),
    ],
)
def test_bad_hyperparameters_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SednaContext.from_env(env)


def test_secrets_stay_out_of_repr() -> None:
    text = repr(SednaContext.from_env(AGGREGATOR_ENV))
    assert "hunter2-secret" not in text
    assert "AKIA-VERY-PRIVATE" not in text
    assert "minio.example" not in text
    assert "surface-defect" in text


def test_context_is_frozen_and_read_only() -> None:
    context = SednaContext.from_env({"epochs": "3"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.role = "trainer"  # type: ignore[misc]
    with pytest.raises(TypeError):
        context.hyperparameters["epochs"] = 5  # type: ignore[index]
    assert hash(context) == hash(SednaContext.from_env({"epochs": "3"}))


def test_hyperparameters_given_to_the_constructor_are_copied_read_only() -> None:
    given = {"epochs": 3}
    context = SednaContext(hyperparameters=given)
    given["epochs"] = 99
    assert context.hyperparameters["epochs"] == 3


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"role": "server"}, "SednaContext.role='server'"),
        ({"transmitter": "ftp"}, "SednaContext.transmitter='ftp'"),
        ({"agg_port": 0}, "SednaContext.agg_port=0"),
        ({"agg_bind_port": 65536}, "SednaContext.agg_bind_port=65536"),
        ({"participants_count": 0}, "SednaContext.participants_count=0"),
        ({"connect_timeout": 0.0}, "SednaContext.connect_timeout=0.0"),
        ({"hyperparameters": {"epoch": 3}}, r"unknown names \['epoch'\]"),
    ],
)
def test_constructor_validates(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SednaContext(**fields)  # type: ignore[arg-type]
