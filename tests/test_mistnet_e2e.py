"""MistNet end to end: the proposal-shaped YAML through `plato-sedna run` on the quickstart's digits.

The front's pretrained weights are made in the test: lenet5 trained centrally for
a few seconds on edge1's images (standing in for the public data a real front
is pretrained on), seeded, saved as a .pth and given to the job as its
spec.pretrainedModel, so trainers and aggregator get PRETRAINED_MODEL_URL.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from test_quickstart_e2e import run_job

QUICKSTART = Path(__file__).resolve().parents[1] / "demos" / "quickstart"
PRETRAINED_MODEL = "digits-lenet5-pretrained"
PRETRAIN_EPOCHS = 2
PRETRAIN_SEED = 0


def pretrain_lenet5(index: Path, out: Path, epochs: int = PRETRAIN_EPOCHS, seed: int = PRETRAIN_SEED) -> Path:
    """lenet5 trained centrally on the images of a Sedna txt index; its state_dict saved to ``out``."""
    import torch
    from PIL import Image
    from plato.models import lenet5

    from plato_sedna.datasources.datasets import image_tensor

    torch.manual_seed(seed)
    lines = [line.split() for line in index.read_text().splitlines() if line.strip()]
    images = torch.stack([image_tensor(Image.open(index.parent / path)) for path, _ in lines])
    labels = torch.tensor([int(label) for _, label in lines])
    model = lenet5.Model(num_classes=10)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    for _ in range(epochs):
        for batch in torch.randperm(len(labels)).split(32):
            optimizer.zero_grad()
            torch.nn.functional.nll_loss(model(images[batch]), labels[batch]).backward()
            optimizer.step()
    torch.save(model.state_dict(), out)
    return out


def mistnet_job(quickstart_job: Path, pretrained: Path | None, env: dict[str, str] | None = None) -> Path:
    """The quickstart job running demos/quickstart/mistnet.yml, optionally with pretrained weights and extra env."""
    shutil.copy(QUICKSTART / "mistnet.yml", quickstart_job.parent / "mistnet.yml")
    edit_job(quickstart_job, "/config/mistnet.yml", pretrained, env)
    return quickstart_job


def edit_job(job_yaml: Path, config: str, pretrained: Path | None, env: dict[str, str] | None = None) -> None:
    """Point every worker of the job at ``config``, add ``env`` to each, and give the job a pretrainedModel."""
    documents = list(yaml.safe_load_all(job_yaml.read_text()))
    job = next(document for document in documents if document["kind"] == "FederatedLearningJob")
    templates = [job["spec"]["aggregationWorker"]["template"]] + [w["template"] for w in job["spec"]["trainingWorkers"]]
    for template in templates:
        for container in template["spec"]["containers"]:
            container["args"] = ["-c", config]
            container["env"] = container.get("env", []) + [{"name": k, "value": v} for k, v in (env or {}).items()]
    if pretrained is not None:
        documents.insert(0, {
            "apiVersion": "sedna.io/v1alpha1",
            "kind": "Model",
            "metadata": {"name": PRETRAINED_MODEL, "annotations": {"plato.sedna.io/model-name": "lenet5"}},
            "spec": {"url": str(pretrained), "format": "pth"},
        })
        job["spec"]["pretrainedModel"] = {"name": PRETRAINED_MODEL}
    job_yaml.write_text(yaml.safe_dump_all(documents, sort_keys=False))


def run_mistnet(job: Path, workdir: Path) -> tuple[dict, dict, str]:
    """Run the job; its summary.json, the published metrics.json and the aggregator's log."""
    result = run_job(job, workdir)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = json.loads((workdir / "summary.json").read_text())
    metrics = json.loads((Path(summary["model_url"]).parent / "metrics.json").read_text())
    return summary, metrics, (workdir / "aggregator" / "worker.log").read_text()


@pytest.fixture(scope="module")
def pretrained(digits_data: Path, tmp_path_factory) -> Path:
    return pretrain_lenet5(digits_data / "edge1.txt", tmp_path_factory.mktemp("pretrained") / "lenet5.pth")


def test_proposal_yaml_runs_unmodified_and_publishes_the_whole_model(quickstart_job: Path, pretrained: Path, tmp_path: Path) -> None:
    import torch
    from plato.models import lenet5

    workdir = tmp_path / "run"
    summary, metrics, aggregator_log = run_mistnet(mistnet_job(quickstart_job, pretrained), workdir)

    assert summary["status"] == "succeeded" and summary["rounds"] == 1  # the job's rounds=10 env: still one round
    assert {w["exit_code"] for w in summary["workers"].values()} == {0}
    assert summary["accuracy"] >= 0.80
    model = lenet5.Model(num_classes=10)
    model.load_state_dict(torch.load(summary["model_url"], weights_only=True))  # the whole model, strict
    front = {key: value for key, value in torch.load(pretrained, weights_only=True).items() if key.startswith(("conv1", "conv2", "conv3"))}
    assert all(torch.equal(model.state_dict()[key], value) for key, value in front.items())  # the front stayed frozen

    assert metrics["algorithm"] == "mistnet" and metrics["cut_layer"] == "relu3"
    assert metrics["epsilon"] == 2 and metrics["keep_probability"] == pytest.approx(0.8808, abs=1e-4)
    assert set(metrics["uploaded_bytes"]) == {"digits-edge1", "digits-edge2"}
    # 120 features = 15 bytes a sample, plus labels (8 bytes) and pickling: well under a FedAvg update (~250 KB).
    assert all(2_000 < size < 40_000 for size in metrics["uploaded_bytes"].values()), metrics["uploaded_bytes"]
    assert metrics["accuracy"] == pytest.approx(summary["accuracy"])
    assert "MistNet: front conv1-relu1-pool1-conv2-relu2-pool2-conv3-relu3 on the trainers" in aggregator_log
    assert "front is randomly initialised" not in aggregator_log


@pytest.mark.slow
def test_no_noise_beats_a_small_epsilon(quickstart_job: Path, pretrained: Path, tmp_path: Path) -> None:
    """Seeded runs (algorithm.random_seed): epsilon absent vs epsilon 0.1 (p = 0.525, nearly coin flips)."""
    config = (QUICKSTART / "mistnet.yml").read_text()
    accuracies = {}
    for name, epsilon_line in (("absent", ""), ("small", "  epsilon: 0.1\n")):
        job_dir = tmp_path / name
        shutil.copytree(quickstart_job.parent, job_dir, symlinks=True)
        job = mistnet_job(job_dir / "job.yaml", pretrained)
        lines = [line for line in config.splitlines(keepends=True) if not line.startswith("  epsilon:")]
        lines.insert(lines.index("algorithm:\n") + 1, epsilon_line + "  random_seed: 1\n")
        (job_dir / "mistnet.yml").write_text("".join(lines))
        summary, metrics, _ = run_mistnet(job, tmp_path / f"{name}-run")
        accuracies[name] = summary["accuracy"]
        assert metrics["epsilon"] == (None if name == "absent" else 0.1)
    assert accuracies["absent"] >= 0.85
    assert accuracies["absent"] > accuracies["small"] + 0.2, accuracies
