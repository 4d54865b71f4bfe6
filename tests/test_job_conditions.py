"""A FederatedLearningJob's stopCondition / aggregationTrigger: parsed, checked, and resolved into the config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plato_sedna.config import load_config_file, resolve_config
from plato_sedna.context import SednaContext
from plato_sedna.errors import ConfigError
from plato_sedna.job_conditions import (
    AGGREGATION_TRIGGER_ANNOTATION,
    STOP_CONDITION_ANNOTATION,
    server_tables,
)
from plato_sedna.resources import JobFacts
from plato_sedna.servers.stop import RoundState, stop_condition_from
from plato_sedna.servers.trigger import AggregationTrigger

JOB = "FederatedLearningJob default/digits-fedavg"
CONFIGS = Path(__file__).parent / "data" / "configs"
AGGREGATOR_ENV = {"AGG_BIND_PORT": "7363", "JOB_NAME": "digits-fedavg", "NAMESPACE": "default"}

PROPOSAL_STOP = {
    "operator": "or",
    "conditions": [
        {"metric": "rounds", "operator": ">", "threshold": 20},
        {"metric": "targetAccuracy", "operator": ">=", "threshold": 0.95},
        {"metric": "deltaLoss", "operator": "<", "threshold": 0.001},
    ],
}
PROPOSAL_TRIGGER = {"condition": {"metric": "num_of_ready_clients", "operator": ">=", "threshold": 2}, "timeoutSeconds": 30}


def test_the_proposals_shape_becomes_server_tables() -> None:
    tables = server_tables(JOB, {"stopCondition": PROPOSAL_STOP, "aggregationTrigger": PROPOSAL_TRIGGER}, {})

    # "rounds > 20" is met once round 21 has run
    assert tables["stop_condition"] == {"operator": "or", "rounds": 21, "target_accuracy": 0.95, "delta_loss": 0.001}
    assert tables["aggregation_trigger"] == {"min_clients": 2, "timeout_s": 30.0}
    condition = stop_condition_from(tables["stop_condition"], None, None)
    assert condition.reason(RoundState(20, 0.5, [1.0, 0.5])) is None
    assert condition.reason(RoundState(21, 0.5, [1.0, 0.5])) == "rounds"
    assert AggregationTrigger.from_table(tables["aggregation_trigger"]).threshold(3) == 2


def test_annotations_carry_json_or_yaml_and_win_over_the_spec_field() -> None:
    annotations = {
        STOP_CONDITION_ANNOTATION: json.dumps({"operator": "and", "conditions": [{"metric": "rounds", "threshold": 4}], "maxRounds": 8}),
        AGGREGATION_TRIGGER_ANNOTATION: "condition: {metric: num_of_ready_clients, operator: '>', threshold: 1}\n",
    }

    tables = server_tables(JOB, {}, annotations)
    assert tables == {
        "stop_condition": {"operator": "and", "rounds": 4, "max_rounds": 8},
        "aggregation_trigger": {"min_clients": 2},
    }
    both = server_tables(JOB, {"stopCondition": PROPOSAL_STOP}, annotations)
    assert both["stop_condition"]["rounds"] == 4
    assert server_tables(JOB, {"stopCondition": PROPOSAL_STOP}, {})["stop_condition"]["rounds"] == 21
    assert server_tables(JOB, {}, {}) == {}


@pytest.mark.parametrize(
    ("spec_fields", "annotations", "message"),
    [
        ({"stopCondition": {"conditions": [{"metric": "loss", "threshold": 1}]}}, {},
         r"spec.stopCondition.conditions\[0\].metric is 'loss'; use one of rounds, targetAccuracy"),
        ({"stopCondition": {"conditions": [{"metric": "deltaLoss", "operator": ">", "threshold": 1}]}}, {},
         r"conditions\[0\].operator is '>' for deltaLoss; use < or <="),
        ({"stopCondition": {"operator": "xor", "conditions": [{"metric": "rounds", "threshold": 1}]}}, {},
         r"spec.stopCondition.operator is 'xor'; use 'or' or 'and'"),
        ({"stopCondition": {"conditions": [{"metric": "rounds", "threshold": "ten"}]}}, {},
         r"threshold is 'ten', not a number"),
        ({"stopCondition": {"operator": "or"}}, {}, r"conditions is missing"),
        ({"aggregationTrigger": {"condition": {"metric": "num_of_stale_clients", "threshold": 1}}}, {},
         r"spec.aggregationTrigger.condition.metric is 'num_of_stale_clients'"),
        ({}, {STOP_CONDITION_ANNOTATION: "{operator: or, conditions: ["},
         r"annotation plato.sedna.io/stop-condition is not JSON or YAML"),
        ({}, {AGGREGATION_TRIGGER_ANNOTATION: "{}"}, r"has neither condition nor timeoutSeconds"),
    ],
    ids=["metric", "operator", "combination", "threshold", "no-conditions", "trigger-metric", "annotation-text", "empty-trigger"],
)
def test_bad_conditions_name_the_job_and_the_field(spec_fields, annotations, message) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        server_tables(JOB, spec_fields, annotations)
    assert str(caught.value).startswith(JOB + ": ")


def _job(**tables) -> JobFacts:
    return JobFacts(JOB, 3, tables)


def test_the_job_wins_over_the_file_and_the_env_over_both() -> None:
    raw = load_config_file(CONFIGS / "fedavg.toml")
    raw["server"]["stop_condition"] = {"operator": "or", "rounds": 50, "delta_loss": 0.5}
    job = _job(stop_condition={"operator": "and", "rounds": 4, "target_accuracy": 0.9}, aggregation_trigger={"min_clients": 1})

    config = resolve_config(raw, SednaContext.from_env({**AGGREGATOR_ENV, "PARTICIPANTS_COUNT": "2"}), job)
    assert config["server"]["stop_condition"] == {"operator": "and", "rounds": 4, "target_accuracy": 0.9, "delta_loss": 0.5}
    assert config["server"]["aggregation_trigger"] == {"min_clients": 1}
    assert config["clients"]["total_clients"] == 2  # PARTICIPANTS_COUNT wins over the job

    env = {**AGGREGATOR_ENV, "rounds": "6", "stop_operator": "or"}
    config = resolve_config(raw, SednaContext.from_env(env), job)
    assert config["server"]["stop_condition"]["rounds"] == 6
    assert config["server"]["stop_condition"]["operator"] == "or"
    assert config["trainer"]["rounds"] == 6
    assert config["clients"]["total_clients"] == 3  # from the job's trainingWorkers
    assert raw["server"]["stop_condition"]["rounds"] == 50  # the loaded config is left alone


def test_the_jobs_s3_transmitter_applies_where_the_env_names_none() -> None:
    raw = load_config_file(CONFIGS / "fedavg.toml")
    job = JobFacts(JOB, 2, {}, transmitter="s3", agg_data_path="s3://sedna/fl/aggregation_data")

    config = resolve_config(raw, SednaContext.from_env(AGGREGATOR_ENV), job)
    assert (config["sedna"]["transmitter"], config["sedna"]["agg_data_path"]) == ("s3", "s3://sedna/fl/aggregation_data")

    env = {**AGGREGATOR_ENV, "TRANSMITTER": "s3", "AGG_DATA_PATH": "s3://other/prefix"}
    assert resolve_config(raw, SednaContext.from_env(env), job)["sedna"]["agg_data_path"] == "s3://other/prefix"
    assert resolve_config(raw, SednaContext.from_env(AGGREGATOR_ENV), _job())["sedna"]["transmitter"] == "ws"
