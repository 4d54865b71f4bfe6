"""sednaModelResource takes its architecture from the Model manifest when the config names none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_quickstart_e2e import run_job


def without_architecture(job_yaml: Path) -> None:
    config = job_yaml.parent / "fedavg.toml"
    text = config.read_text()
    assert 'architecture = "lenet5"\n' in text
    config.write_text(text.replace('architecture = "lenet5"\n', ""))
    job_yaml.write_text(job_yaml.read_text().replace('value: "10"', 'value: "1"'))


@pytest.mark.slow  # a full job run; the default suite keeps one of each kind (CI runs -m slow too)
def test_architecture_from_the_model_annotation(quickstart_job: Path, tmp_path: Path) -> None:
    import torch
    from plato.models import lenet5

    without_architecture(quickstart_job)
    workdir = tmp_path / "run"

    result = run_job(quickstart_job, workdir)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((workdir / "summary.json").read_text())
    lenet5.Model(num_classes=10).load_state_dict(torch.load(summary["model_url"], weights_only=True))


@pytest.mark.slow  # a full job run; the default suite keeps one of each kind (CI runs -m slow too)
def test_no_architecture_anywhere_is_a_clear_error(quickstart_job: Path, tmp_path: Path) -> None:
    without_architecture(quickstart_job)
    quickstart_job.write_text(quickstart_job.read_text().replace("plato.sedna.io/model-name: lenet5", "team: vision"))
    workdir = tmp_path / "run"

    result = run_job(quickstart_job, workdir)

    assert result.returncode != 0
    log = (workdir / "aggregator" / "worker.log").read_text()
    assert "plato: error: trainer.model_name = sednaModelResource needs an architecture" in log
    assert "Model default/digits-lenet5 with plato.sedna.io/model-name" in log
    assert "Traceback" not in log
