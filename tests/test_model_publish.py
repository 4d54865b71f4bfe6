"""Publishing the global model: each format and location, versions, atomicity, failures."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest
from support.model_helpers import assert_same_state, build, randomized, settings

from plato_sedna.errors import ResourceError
from plato_sedna.models import formats
from plato_sedna.models.publish import ModelPublisher, PublishSettings
from plato_sedna.models.sedna_resource import build_model

pytest_plugins = ("support.storage_fixtures", "support.model_fixtures")

LENET = {"architecture": "lenet5", "num_classes": 10}
METRICS = {"rounds": 1, "accuracy": 0.5, "history": [{"round": 1, "loss": 1.5}], "samples": 70}


def destination(where: str, tmp_path: Path, s3_bucket: str, name: str) -> str:
    return (
        str(tmp_path / "published" / name)
        if where == "local"
        else f"s3://{s3_bucket}/models/{name}"
    )


def publisher(url: str, storage, tmp_path: Path, fmt: str, **options) -> ModelPublisher:
    shape = options.pop("input_shape", None)
    return ModelPublisher(url, storage, tmp_path / "staged", fmt, PublishSettings(**options), shape)


def published_models():
    """(format, architecture settings, model name in MODEL_URL) for each format."""
    return [
        ("pth", LENET, "lenet.pth"),
        ("safetensors", LENET, "lenet.safetensors"),
        ("ultralytics", {"architecture": "yolov5n.yaml", "num_classes": 2}, "yolo.pt"),
    ]


@pytest.mark.parametrize("where", ["local", "s3"])
@pytest.mark.parametrize(("fmt", "values", "name"), published_models())
def test_each_format_round_trips_bit_for_bit(
    fmt: str, values: dict, name: str, where: str, tmp_path: Path, storage, s3_bucket: str
) -> None:
    model = randomized(build(**values))
    url = destination(where, tmp_path, s3_bucket, name)

    published = publisher(url, storage, tmp_path, fmt).publish(model, METRICS, 1)

    assert published == url
    assert_same_state(model, build_model(settings(**values), url, storage))
    metrics = json.loads(storage.to_local_path(url.rsplit("/", 1)[0] + "/metrics.json").read_text())
    assert metrics["round"] == 1 and metrics["accuracy"] == 0.5 and metrics["samples"] == 70
    assert (
        metrics["format"] == fmt
        and metrics["history"][0]["loss"] == 1.5
        and metrics["published_at"]
    )


@pytest.mark.parametrize("where", ["local", "s3"])
def test_hugging_face_folder_round_trips(
    where: str, bert_folder: Path, tmp_path: Path, storage, s3_bucket: str
) -> None:
    model = randomized(build(architecture=str(bert_folder)))
    url = destination(where, tmp_path, s3_bucket, "bert/")

    publisher(url, storage, tmp_path, "huggingface").publish(model, METRICS, 1)

    fetched = storage.to_local_path(url)
    assert {"config.json", "model.safetensors", "metrics.json"} <= {
        p.name for p in fetched.iterdir()
    }
    assert_same_state(model, build(architecture=str(fetched)))


def test_onnx_runs_under_onnxruntime_with_the_same_outputs(tmp_path: Path, storage) -> None:
    import numpy as np
    import onnxruntime
    import torch

    model = randomized(build(**LENET)).eval()
    url = str(tmp_path / "out" / "lenet.onnx")

    publisher(url, storage, tmp_path, "onnx", input_shape=(1, 28, 28)).publish(model, METRICS, 1)

    sample = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    session = onnxruntime.InferenceSession(url, providers=["CPUExecutionProvider"])
    (outputs,) = session.run(None, {"input": sample.numpy()})
    np.testing.assert_allclose(outputs, model(sample).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_formats_the_model_cannot_take_are_errors() -> None:
    lenet = build(**LENET)
    with pytest.raises(
        ResourceError,
        match=r"model format 'tflite' \(the Model's spec.format\) cannot be published; supported: "
        "pth, pt, ckpt, safetensors, onnx, pb",
    ):
        formats.canonical_format("tflite", lenet)
    with pytest.raises(
        ResourceError,
        match="cannot be published as 'huggingface': only Hugging Face models; it can be published "
        "as: pth, pt, ckpt, safetensors, onnx, pb",
    ):
        formats.canonical_format("huggingface", lenet)
    with pytest.raises(ResourceError, match="onnx needs one sample's shape"):
        formats.write(lenet, "onnx", Path("unused.onnx"))
    assert formats.canonical_format("pt", lenet) == "pth"
    assert formats.canonical_format("ckpt", lenet) == "pth"


@pytest.mark.parametrize("where", ["local", "s3"])
def test_versions_are_kept_with_a_latest_pointer(
    where: str, tmp_path: Path, storage, s3_bucket: str
) -> None:
    url = destination(where, tmp_path, s3_bucket, "lenet.pth")
    folder = url.rsplit("/", 1)[0]
    publishing = publisher(url, storage, tmp_path, "pth", keep_versions=2)
    models = [randomized(build(**LENET)) for _ in range(4)]
    for round_number, model in enumerate(models, start=1):
        model.fc5.bias.data.fill_(round_number)
        publishing.publish(model, {**METRICS, "rounds": round_number}, round_number)

    assert storage.list_folder(folder) == [
        "latest",
        "lenet.pth",
        "metrics.json",
        "round-0003",
        "round-0004",
    ]
    assert storage.list_folder(f"{folder}/round-0004") == ["lenet.pth", "metrics.json"]
    assert storage.to_local_path(f"{folder}/latest").read_text().strip() == "round-0004"
    assert_same_state(models[3], build_model(settings(**LENET), url, storage))
    assert_same_state(
        models[2], build_model(settings(**LENET), f"{folder}/round-0003/lenet.pth", storage)
    )
    assert sorted(p.name for p in (tmp_path / "staged").iterdir()) == [
        "latest",
        "round-0003",
        "round-0004",
    ]


def test_every_n_rounds_and_always_the_last(tmp_path: Path, storage) -> None:
    url = str(tmp_path / "out" / "lenet.pth")
    publishing = publisher(url, storage, tmp_path, "pth", every=2, keep_versions=0)
    model = build(**LENET)

    done = [publishing.publish(model, METRICS, round_number) for round_number in (1, 2, 3)]
    final = publishing.publish(model, METRICS, 3, final=True)

    assert done == [None, url, None] and final == url
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["lenet.pth", "metrics.json"]


def test_publish_settings_are_checked() -> None:
    from plato_sedna.errors import ConfigError

    with pytest.raises(
        ConfigError, match=r"\[server.publish\] every = 0 must be a whole number >= 1"
    ):
        PublishSettings.from_table({"every": 0})
    with pytest.raises(ConfigError, match="unknown keys \\['keep'\\]"):
        PublishSettings.from_table({"keep": 3})


def read_constant(data: bytes) -> float:
    """The value every weight of a published linear model holds; fails on a partial file."""
    import torch

    state = torch.load(io.BytesIO(data), weights_only=True)
    values = state["weight"].unique()
    assert len(values) == 1 and state["weight"].shape == (2500, 1000)
    return float(values[0])


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_polling_reader_never_sees_a_partial_model(
    where: str, tmp_path: Path, storage, s3_client, s3_bucket: str
) -> None:
    import torch

    url = destination(where, tmp_path, s3_bucket, "big.pth")  # 10 MB: a multipart upload to s3
    publishing = publisher(url, storage, tmp_path, "pth", keep_versions=1)
    model = torch.nn.Linear(1000, 2500, bias=False)
    seen: list[float] = []
    done = threading.Event()

    def read() -> bytes | None:
        if where == "local":
            path = Path(url)
            return path.read_bytes() if path.exists() else None
        try:
            return s3_client.get_object(Bucket=s3_bucket, Key="models/big.pth")["Body"].read()
        except s3_client.exceptions.NoSuchKey:
            return None

    def poll() -> None:
        while not done.is_set():
            data = read()
            if data is not None:
                seen.append(read_constant(data))

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for round_number in range(1, 5):
            model.weight.data.fill_(round_number)
            publishing.publish(model, METRICS, round_number)
    finally:
        done.set()
        reader.join()

    assert seen and set(seen) <= {1.0, 2.0, 3.0, 4.0}
    assert read_constant(read()) == 4.0


def test_an_unwritable_path_keeps_the_model_locally(tmp_path: Path, storage) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the model's folder should be")
    url = f"{blocker}/lenet.pth"
    model = randomized(build(**LENET))

    with pytest.raises(ResourceError) as raised:
        publisher(url, storage, tmp_path, "pth").publish(model, METRICS, 3)

    kept = tmp_path / "staged" / "round-0003"
    assert f"publishing the round-3 model to {url} failed" in str(raised.value)
    assert f"The model is kept locally in {kept}" in str(raised.value)
    assert_same_state(model, build_model(settings(**LENET), str(kept / "lenet.pth"), storage))


def test_an_unreachable_s3_keeps_the_model_locally(tmp_path: Path, cache_dir: Path) -> None:
    from support.s3_server import free_port

    from plato_sedna.storage import S3Settings, Storage

    dead = S3Settings(f"http://127.0.0.1:{free_port()}", "k", "s")
    with Storage(cache_dir, dead) as storage, pytest.raises(ResourceError) as raised:
        publisher("s3://models/lenet.pth", storage, tmp_path, "pth").publish(
            build(**LENET), METRICS, 1
        )

    message = str(raised.value)
    assert (
        "publishing the round-1 model to s3://models/lenet.pth failed: cannot reach S3 endpoint"
        in message
    )
    assert f"kept locally in {tmp_path / 'staged' / 'round-0001'}" in message
    assert (tmp_path / "staged" / "round-0001" / "lenet.pth").is_file()


def test_sedna_read_only_download_publishes_to_the_model_url() -> None:
    from types import SimpleNamespace

    from plato_sedna.models.global_model import publish_url

    model = SimpleNamespace(url="s3://bkt/models/net.pth")
    assert publish_url("/downloads/bkt/models/net.pth", model) == "s3://bkt/models/net.pth"
    assert publish_url("/home/data/models/net.pth", model) == "/home/data/models/net.pth"
    assert publish_url("/downloads/bkt/models/net.pth", None) == "/downloads/bkt/models/net.pth"
