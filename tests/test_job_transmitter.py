"""The proposal's transimitter.transimitter_list, read from the discussion's own job."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from plato_sedna.config import resolve_config
from plato_sedna.context import SednaContext
from plato_sedna.errors import ConfigError
from plato_sedna.job_transmitter import combined_algorithm, transmitter_choice
from plato_sedna.resources import JobFacts

PROPOSAL = Path(__file__).parent / "data" / "upstream" / "proposal"
REF = "FederatedLearningJob default/surface-defect-detection"


def _discussion_spec() -> dict:
    return yaml.safe_load((PROPOSAL / "job-crd-example.yaml").read_text())["spec"]


def test_the_discussions_list_selects_adaptive_freezing_with_its_sync_frequency() -> None:
    choice = transmitter_choice(REF, _discussion_spec())
    assert choice is not None
    assert choice.algorithm == "adaptive_freezing"
    assert dict(choice.keys) == {"trainer.epochs": 10}
    assert choice.where == "spec.transimitter.transimitter_list"


def test_sedna_spelling_beside_ws_is_read_too() -> None:
    spec = {"transmitter": {"ws": {}, "transmitter_list": [{"name": "adaptive_sync", "parameters": [{"name": "sync_frequency", "value": "4"}]}]}}
    choice = transmitter_choice(REF, spec)
    assert (choice.algorithm, dict(choice.keys)) == ("adaptive_sync", {"algorithm.initial_sync_frequency": 4})
    assert transmitter_choice(REF, {"transmitter": {"ws": {}}}) is None


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"name": "gossip"}], "'gossip', which plato-sedna cannot honour; use one of simple"),
        ([{"name": "adaptive_freezing"}, {"name": "adaptive_sync"}], "cannot combine"),
        ([{"name": "simple", "parameters": [{"name": "sync_frequency"}]}], "give each parameter a name and a value"),
        ("simple", "list the transmitters"),
        (
            [{"name": "simple", "parameters": [{"name": "sync_frequency", "value": "2"}]},
             {"name": "adaptive_freezing", "parameters": [{"name": "sync_frequency", "value": "3"}]}],
            "sets trainer.epochs to both 2 and 3",
        ),
    ],
)
def test_a_list_that_cannot_be_honoured_is_refused_with_the_reason(entries, message) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        transmitter_choice(REF, {"transimitter": {"transimitter_list": entries}})
    assert REF in str(raised.value)


def test_with_mistnet_the_adaptive_transmitter_is_left_out_with_a_warning(caplog) -> None:
    choice = transmitter_choice(REF, _discussion_spec())
    with caplog.at_level(logging.WARNING):
        assert combined_algorithm(choice, "mistnet", REF) == "mistnet"
    assert "exchanges no weights" in caplog.text
    assert combined_algorithm(choice, None, REF) == "adaptive_freezing"
    assert combined_algorithm(choice, "fedavg", REF) == "adaptive_freezing"
    with pytest.raises(ConfigError, match="cannot combine with aggregation_algorithm=fedprox"):
        combined_algorithm(choice, "fedprox", REF)


def _facts(spec: dict, trainers: int = 2) -> JobFacts:
    from plato_sedna.job_conditions import server_tables

    return JobFacts(REF, trainers, server_tables(REF, spec, {}), transmitter_choice=transmitter_choice(REF, spec))


def test_the_discussions_job_resolves_the_aggregator_config(caplog) -> None:
    """No Plato config: the job's fields, the catalogue and the env make it."""
    env = {"AGG_BIND_PORT": "7363", "JOB_NAME": "surface-defect-detection", "NAMESPACE": "default"}
    with caplog.at_level(logging.WARNING):
        config = resolve_config({}, SednaContext.from_env(env), _facts(_discussion_spec()))
    assert config["server"]["type"] == "adaptive_freezing"
    assert config["trainer"]["epochs"] == 10
    assert config["trainer"]["rounds"] == 101  # rounds > 100
    # aggregationTrigger: more than 5 ready clients, capped to the job's 2 trainers
    assert config["server"]["aggregation_trigger"]["min_clients"] == 2
    assert "waits for 6 ready trainers, but the job has 2" in caplog.text


def test_the_env_wins_over_the_job_list() -> None:
    env = {"AGG_IP": "x", "JOB_NAME": "j", "NAMESPACE": "default", "PARTICIPANTS_COUNT": "2", "epochs": "1"}
    config = resolve_config({}, SednaContext.from_env(env), _facts(_discussion_spec()))
    assert config["trainer"]["epochs"] == 1
    assert config["clients"]["type"] == "adaptive_freezing"


def test_the_annotation_carries_the_list_on_sednas_own_crds() -> None:
    annotations = {"plato.sedna.io/transmitter-list": '[{"name": "adaptive_sync"}]'}
    choice = transmitter_choice(REF, _discussion_spec(), annotations)
    assert (choice.algorithm, choice.where) == ("adaptive_sync", "annotation plato.sedna.io/transmitter-list")
    with pytest.raises(ConfigError, match="is not JSON or YAML"):
        transmitter_choice(REF, {}, {"plato.sedna.io/transmitter-list": "[unclosed"})


def test_render_writes_the_list_the_workers_read(tmp_path: Path) -> None:
    from conftest import QUICKSTART

    from plato_sedna.kube import _job_record
    from plato_sedna.tools import render

    folder = tmp_path / "out"
    arguments = ["-c", str(QUICKSTART / "fedavg.toml"), "--trainer", "edge1=data/edge1.txt",
                 "--trainer", "edge2=data/edge2.txt", "--model-url", "model/m.pth", "-o", str(folder)]
    assert render.main([*arguments, "--transmitter", "simple:sync_frequency=3", "--transmitter", "adaptive_freezing"]) == 0
    (job,) = [doc for doc in yaml.safe_load_all((folder / "job.yaml").read_text()) if doc and doc["kind"] == "FederatedLearningJob"]
    record = _job_record(job, "job.yaml")
    choice = transmitter_choice(record.ref, record.proposal_fields, record.annotations)
    assert (choice.algorithm, dict(choice.keys)) == ("adaptive_freezing", {"trainer.epochs": 3})
    assert render.main([*arguments, "--transmitter", "gossip"]) != 0
