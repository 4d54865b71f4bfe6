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
        ({"delta_loss": "100", "target_accuracy": "1.0"}, 2, "delta_loss"),
        ({"rounds": "3", "target_accuracy": "0.01", "stop_operator": "and"}, 3, "rounds and target_accuracy"),
    ],
    ids=["delta_loss", "rounds-and-accuracy"],
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


def test_unknown_stop_operator_fails_at_start(quickstart_job: Path, tmp_path: Path) -> None:
    with_aggregator_env(quickstart_job, stop_operator="xor")

    result = run_job(quickstart_job, tmp_path / "run")

    assert result.returncode != 0
    log = (tmp_path / "run" / "aggregator" / "worker.log").read_text()
    assert "plato: error: stop_operator='xor'" in log and "Traceback" not in log
