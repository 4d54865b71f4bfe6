"""Stop conditions on the quickstart job, through `plato-sedna run`: the right round, the right reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_quickstart_e2e import run_job

AGGREGATOR_ENV = '''              - name: rounds
                value: "10"'''


def with_aggregator_env(job_yaml: Path, **variables: str) -> None:
    extra = "".join(f'\n              - name: {name}\n                value: "{value}"' for name, value in variables.items())
    text = job_yaml.read_text()
    assert AGGREGATOR_ENV in text
    job_yaml.write_text(text.replace(AGGREGATOR_ENV, AGGREGATOR_ENV + extra))


@pytest.mark.parametrize(
    ("variables", "rounds", "reason"),
    [
        pytest.param({"delta_loss": "100", "target_accuracy": "1.0"}, 2, "delta_loss", id="delta_loss", marks=pytest.mark.slow),
        pytest.param(
            {"rounds": "3", "target_accuracy": "0.01", "stop_operator": "and"}, 3, "rounds and target_accuracy",
            id="rounds-and-accuracy", marks=pytest.mark.slow,
        ),
    ],
)
def test_stop_condition_from_pod_env(quickstart_job: Path, tmp_path: Path, variables, rounds, reason) -> None:
    with_aggregator_env(quickstart_job, **variables)
    workdir = tmp_path / "run"

    result = run_job(quickstart_job, workdir)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert (summary["rounds"], summary["stop_reason"]) == (rounds, reason)
    metrics = json.loads((workdir / "model" / "metrics.json").read_text())
    assert all(record["loss"] > 0 for record in metrics["history"])


def test_unknown_stop_operator_is_refused_before_any_worker_starts(quickstart_job: Path, tmp_path: Path) -> None:
    with_aggregator_env(quickstart_job, stop_operator="xor")

    result = run_job(quickstart_job, tmp_path / "run")

    # Caught from the manifest before any worker starts: nothing is run, nothing written.
    assert result.returncode != 0
    assert "stop_operator='xor' is not one of or, and" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


JOB_METADATA = "metadata:\n  name: digits-fedavg\nspec:\n"


def with_job_fields(job_yaml: Path, annotations: dict[str, str] | None = None, spec: str = "") -> None:
    """Annotate the FederatedLearningJob and/or add extended-CRD spec fields; drop the env's rounds."""
    text = job_yaml.read_text()
    assert JOB_METADATA in text and AGGREGATOR_ENV in text
    metadata = "metadata:\n  name: digits-fedavg\n"
    if annotations:
        metadata += "  annotations:\n" + "".join(f"    {key}: '{value}'\n" for key, value in annotations.items())
    text = text.replace(JOB_METADATA, metadata + "spec:\n" + spec).replace("\n" + AGGREGATOR_ENV, "")
    job_yaml.write_text(text)


def _finished(workdir: Path, result) -> dict:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((workdir / "summary.json").read_text())


@pytest.mark.slow  # a full job run; the default suite keeps one of each kind (CI runs -m slow too)
def test_stop_condition_from_the_jobs_annotation(quickstart_job: Path, tmp_path: Path) -> None:
    stop = '{"operator": "or", "conditions": [{"metric": "rounds", "operator": ">=", "threshold": 2}]}'
    with_job_fields(quickstart_job, {"plato.sedna.io/stop-condition": stop})
    workdir = tmp_path / "run"

    summary = _finished(workdir, run_job(quickstart_job, workdir))

    assert (summary["rounds"], summary["stop_reason"]) == (2, "rounds")
    log = (workdir / "aggregator" / "worker.log").read_text()
    assert "Stop condition: round >= 2 or accuracy >= 0.97 (at most 2 rounds)" in log


EXTENDED_SPEC = """  stopCondition:
    operator: and
    conditions:
      - {metric: rounds, operator: ">=", threshold: 2}
      - {metric: targetAccuracy, operator: ">=", threshold: 0.01}
  aggregationTrigger:
    condition: {metric: num_of_ready_clients, operator: ">=", threshold: 2}
    timeoutSeconds: 120
"""


@pytest.mark.slow  # a full job run; the default suite keeps one of each kind (CI runs -m slow too)
def test_stop_condition_and_trigger_from_the_extended_crds_spec(quickstart_job: Path, tmp_path: Path) -> None:
    with_job_fields(quickstart_job, spec=EXTENDED_SPEC)
    workdir = tmp_path / "run"

    summary = _finished(workdir, run_job(quickstart_job, workdir))

    assert (summary["rounds"], summary["stop_reason"]) == (2, "rounds and target_accuracy")
    resolved = (workdir / "aggregator" / "runtime" / "config.resolved.toml").read_text()
    assert "min_clients = 2" in resolved and "timeout_s = 120.0" in resolved


def test_unknown_metric_in_the_job_fails_at_start(quickstart_job: Path, tmp_path: Path) -> None:
    stop = '{"conditions": [{"metric": "f1", "threshold": 0.9}]}'
    with_job_fields(quickstart_job, {"plato.sedna.io/stop-condition": stop})

    result = run_job(quickstart_job, tmp_path / "run")

    assert result.returncode != 0
    # Every worker reads the job's annotation and stops on it; the first to exit ends the run, and
    # the others may be stopped before they write (a clean-clone run once saw an empty aggregator log).
    logs = [log.read_text() for log in sorted((tmp_path / "run").glob("*/worker.log"))]
    message = "plato: error: FederatedLearningJob default/digits-fedavg: annotation plato.sedna.io/stop-condition.conditions[0].metric is 'f1'"
    assert any(message in log for log in logs), logs
    assert all("Traceback" not in log for log in logs)
