"""A job publishing to an s3 Model nothing has been published to yet starts once the Model is seeded.

Sedna's storage initializer (the init container of every FL pod) downloads the Model's url
before the worker starts and fails when no object is there; ``render --seed-model``
publishes the untrained model at the url first. The stand-in in
``support/storage_initializer.py`` does what the initializer does, against the loopback S3.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import QUICKSTART
from support.s3_server import ANY_ACCESS_KEY_ID, ANY_SECRET_ACCESS_KEY
from support.storage_initializer import InitializerFailed, initialize_pod, job_pods

pytest_plugins = ("support.storage_fixtures",)


def _render(tmp_path: Path, capsys, model_url: str, bucket: str, *extra: str) -> tuple[int, str, list[dict]]:
    from plato_sedna.tools.render import main

    folder = tmp_path / "manifests"
    status = main([
        "-c", str(QUICKSTART / "fedavg.toml"),
        "--trainer", f"edge1=s3://{bucket}/edge1/train.txt", "--trainer", f"edge2=s3://{bucket}/edge2/train.txt",
        "--model-url", model_url, "--architecture", "lenet5", "--s3-secret", "minio", "--s3-endpoint", "minio:9000",
        "-o", str(folder), *extra,
    ])
    captured = capsys.readouterr()
    objects = [obj for obj in yaml.safe_load_all((folder / "job.yaml").read_text()) if obj] if status == 0 else []
    return status, captured.out + captured.err, objects


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_server) -> None:
    monkeypatch.setenv("S3_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("ACCESS_KEY_ID", ANY_ACCESS_KEY_ID)
    monkeypatch.setenv("SECRET_ACCESS_KEY", ANY_SECRET_ACCESS_KEY)


@pytest.fixture
def datasets(s3_client, s3_bucket: str) -> str:
    for node in ("edge1", "edge2"):
        s3_client.put_object(Bucket=s3_bucket, Key=f"{node}/train.txt", Body=b"a.png 0\n")
    return s3_bucket


def _start_pods(s3_client, objects: list[dict], root: Path) -> dict[str, dict[str, Path]]:
    return {pod: initialize_pod(s3_client, urls, root / pod / "downloads") for pod, urls in job_pods(objects).items()}


def test_an_unseeded_s3_model_stops_every_pod_in_its_init_container(
    tmp_path: Path, capsys, s3_client, datasets: str, s3_env
) -> None:
    status, output, objects = _render(tmp_path, capsys, f"s3://{datasets}/models/digits.pth", datasets)

    assert status == 0
    assert "--seed-model" in output and "Failed to fetch files" in output  # render says what will happen
    for pod, urls in job_pods(objects).items():
        with pytest.raises(InitializerFailed, match="Failed to fetch files"):
            initialize_pod(s3_client, urls, tmp_path / pod)


@pytest.mark.parametrize(("tail", "entry"), [("models/digits.pth", "digits.pth"), ("models/digits", "digits/model.pth")])
def test_a_seeded_job_passes_the_storage_initializer(
    tail: str, entry: str, tmp_path: Path, capsys, s3_client, datasets: str, s3_env
) -> None:
    import torch

    url = f"s3://{datasets}/{tail}"
    status, output, objects = _render(tmp_path, capsys, url, datasets, "--seed-model")

    assert status == 0, output
    assert f"seeded s3://{datasets}/models/{entry}" in output
    started = _start_pods(s3_client, objects, tmp_path / "pods")
    assert set(started) == {"aggregator", "trainer-0", "trainer-1"}
    model = tmp_path / "pods" / "aggregator" / "downloads" / datasets / "models" / entry
    state = torch.load(model, weights_only=True)
    assert state["fc5.weight"].shape[0] == 10  # lenet5's head: an untrained model of the job's architecture
    assert (tmp_path / "pods" / "trainer-1" / "downloads" / datasets / "edge2" / "train.txt").read_text() == "a.png 0\n"
    metrics = json.loads((model.parent / "metrics.json").read_text()) if "/" in entry else None
    if metrics is not None:
        assert metrics["round"] == 0 and metrics["seeded_by"] == "plato-sedna render --seed-model"


def test_validate_warns_that_an_s3_model_must_exist(tmp_path: Path, capsys, datasets: str, s3_env) -> None:
    from plato_sedna.tools.validate import main

    status, _, _ = _render(tmp_path, capsys, f"s3://{datasets}/models/digits.pth", datasets)
    assert status == 0
    assert main([str(tmp_path / "manifests" / "job.yaml")]) == 0
    output = capsys.readouterr().out
    assert "Model default/fedavg-model: spec.url: warning: Sedna's storage initializer downloads" in output
    assert "--seed-model" in output


def test_seeding_without_credentials_names_the_fix(tmp_path: Path, capsys, datasets: str, monkeypatch) -> None:
    monkeypatch.setenv("S3_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("PLATO_SEDNA_S3_RETRIES", "0")
    status, output, _ = _render(tmp_path, capsys, f"s3://{datasets}/models/digits.pth", datasets, "--seed-model")
    assert status != 0
    assert "--seed-model: could not publish an initial model at" in output and "ACCESS_KEY_ID" in output
