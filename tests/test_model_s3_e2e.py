"""Federated runs (`plato-sedna run`) whose model starts from pretrained weights in S3 and is published to S3."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from support.s3_server import ANY_ACCESS_KEY_ID, ANY_SECRET_ACCESS_KEY
from test_quickstart_e2e import run_job

pytest_plugins = ("support.storage_fixtures",)

PRETRAINED_MODEL = """---
apiVersion: sedna.io/v1alpha1
kind: Model
metadata:
  name: digits-pretrained
spec:
  url: {url}
  format: pth
"""


def s3_job(job_yaml: Path, endpoint: str, model_url: str, pretrained_url: str) -> None:
    """The quickstart, 2 rounds, its Model in S3, a pretrained Model in S3, S3 keys for every worker."""
    credentials = "".join(
        f'\n                - name: {name}\n                  value: "{value}"'
        for name, value in (
            ("S3_ENDPOINT_URL", endpoint),
            ("ACCESS_KEY_ID", ANY_ACCESS_KEY_ID),
            ("SECRET_ACCESS_KEY", ANY_SECRET_ACCESS_KEY),
        )
    )
    text = job_yaml.read_text().replace('value: "10"', 'value: "2"')
    text = text.replace("url: model/digits-lenet5.pth", f"url: {model_url}")
    text = text.replace(
        "spec:\n  aggregationWorker:",
        "spec:\n  pretrainedModel:\n    name: digits-pretrained\n  aggregationWorker:",
    )
    text = text.replace(
        "            env:\n", "            env:" + credentials.replace("\n  ", "\n") + "\n", 1
    )
    text = text.replace("              env:\n", "              env:" + credentials + "\n")
    job_yaml.write_text(text + PRETRAINED_MODEL.format(url=pretrained_url))


def upload_pretrained(s3_client, bucket: str) -> dict:
    import torch
    from plato.models import lenet5

    torch.manual_seed(3)
    state = lenet5.Model(num_classes=10).state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    s3_client.put_object(Bucket=bucket, Key="pretrained/lenet5.pth", Body=buffer.getvalue())
    return state


def read_object(s3_client, bucket: str, key: str) -> bytes:
    return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_starts_from_s3_weights_and_publishes_versions_to_s3(
    quickstart_job: Path, tmp_path: Path, s3_server, s3_client, s3_bucket
) -> None:
    import torch
    from plato.models import lenet5

    upload_pretrained(s3_client, s3_bucket)
    model_url = f"s3://{s3_bucket}/models/digits-lenet5.pth"
    s3_job(
        quickstart_job, s3_server.endpoint_url, model_url, f"s3://{s3_bucket}/pretrained/lenet5.pth"
    )
    workdir = tmp_path / "run"

    result = run_job(quickstart_job, workdir)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert (
        summary["status"] == "succeeded"
        and summary["rounds"] == 2
        and summary["model_url"] == model_url
    )
    for worker in ("aggregator", "trainer-1", "trainer-2"):
        log = (workdir / worker / "worker.log").read_text()
        assert f"Loaded pretrained weights from s3://{s3_bucket}/pretrained/lenet5.pth" in log
        assert ANY_SECRET_ACCESS_KEY not in log
    keys = {
        item["Key"]
        for item in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="models/")["Contents"]
    }
    assert keys == {
        f"models/{name}"
        for name in (
            "digits-lenet5.pth",
            "metrics.json",
            "latest",
            "round-0001/digits-lenet5.pth",
            "round-0001/metrics.json",
            "round-0002/digits-lenet5.pth",
            "round-0002/metrics.json",
            # The aggregator's resume state beside MODEL_URL (docs: "Restarting the aggregator").
            ".plato-sedna-resume/digits-fedavg/resume.json",
            ".plato-sedna-resume/digits-fedavg/resume-weights-0002.pth",
        )
    }
    assert read_object(s3_client, s3_bucket, "models/latest").decode().strip() == "round-0002"
    published = torch.load(
        io.BytesIO(read_object(s3_client, s3_bucket, "models/digits-lenet5.pth")), weights_only=True
    )
    lenet5.Model(num_classes=10).load_state_dict(published)  # strict: names and shapes
    metrics = json.loads(read_object(s3_client, s3_bucket, "models/metrics.json"))
    assert metrics["round"] == 2 and metrics["samples"] > 0 and metrics["stop_reason"] == "rounds"
    assert metrics["accuracy"] == pytest.approx(summary["accuracy"])


@pytest.mark.slow
def test_a_failed_publish_ends_the_job_non_zero_and_keeps_the_model(
    quickstart_job: Path, tmp_path: Path, s3_server, s3_client, s3_bucket
) -> None:
    upload_pretrained(s3_client, s3_bucket)
    model_url = "s3://no-such-bucket/models/digits-lenet5.pth"
    s3_job(
        quickstart_job, s3_server.endpoint_url, model_url, f"s3://{s3_bucket}/pretrained/lenet5.pth"
    )
    workdir = tmp_path / "run"

    result = run_job(quickstart_job, workdir)

    assert result.returncode != 0
    log = (workdir / "aggregator" / "worker.log").read_text()
    assert (
        f"publishing the round-1 model to {model_url} failed: bucket 'no-such-bucket' does not exist"
        in log
    )
    kept = next((workdir / "aggregator").rglob("published/round-0001/digits-lenet5.pth"))
    assert f"The model is kept locally in {kept.parent}" in log
    assert "Traceback" not in log
