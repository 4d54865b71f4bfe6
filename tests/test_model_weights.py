"""Pretrained weights from local paths, s3:// and http://, in each format; bad files fail clearly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.model_helpers import assert_same_state, build, randomized, settings

from plato_sedna.errors import ResourceError
from plato_sedna.models.sedna_resource import build_model, pretrained_url

pytest_plugins = ("support.storage_fixtures", "support.model_fixtures")

LENET = {"architecture": "lenet5", "num_classes": 10}


def write_weights(kind: str, model, folder: Path) -> Path:
    """``model``'s weights as a file (or folder) of ``kind`` under ``folder``."""
    import torch

    from plato_sedna.models import formats

    folder.mkdir(parents=True, exist_ok=True)
    if kind == "pth":
        formats.write(model, "pth", folder / "lenet.pth")
        return folder / "lenet.pth"
    if kind == "lightning-ckpt":  # a checkpoint dict, keys prefixed by the LightningModule
        state = {f"model.{key}": value for key, value in model.state_dict().items()}
        torch.save({"epoch": 3, "state_dict": state, "lr": 0.1}, folder / "lenet.ckpt")
        return folder / "lenet.ckpt"
    if kind == "safetensors":
        formats.write(model, "safetensors", folder / "lenet.safetensors")
        return folder / "lenet.safetensors"
    raise AssertionError(kind)


def place(path: Path, where: str, s3_client, s3_bucket: str, http_server, web_root: Path) -> str:
    """The URL of ``path`` (a file or a folder) once put ``where``: local, s3 or http."""
    if where == "local":
        return str(path)
    if where == "http":
        shutil.copy(path, web_root / path.name)
        return http_server.url(path.name)
    if path.is_dir():
        for member in path.iterdir():
            s3_client.upload_file(str(member), s3_bucket, f"weights/{path.name}/{member.name}")
        return f"s3://{s3_bucket}/weights/{path.name}/"
    s3_client.upload_file(str(path), s3_bucket, f"weights/{path.name}")
    return f"s3://{s3_bucket}/weights/{path.name}"


@pytest.mark.parametrize("where", ["local", "s3", "http"])
@pytest.mark.parametrize("kind", ["pth", "lightning-ckpt", "safetensors"])
def test_state_dicts_load_bit_for_bit(
    kind: str, where: str, tmp_path: Path, storage, s3_client, s3_bucket, http_server, web_root
) -> None:
    trained = randomized(build(**LENET))
    url = place(
        write_weights(kind, trained, tmp_path / "w"),
        where,
        s3_client,
        s3_bucket,
        http_server,
        web_root,
    )

    loaded = build_model(settings(**LENET), url, storage)

    assert_same_state(trained, loaded)


@pytest.mark.parametrize("where", ["local", "s3"])
def test_hugging_face_folder_as_pretrained_weights(
    where: str,
    bert_folder: Path,
    tmp_path: Path,
    storage,
    s3_client,
    s3_bucket,
    http_server,
    web_root,
) -> None:
    from transformers import BertForSequenceClassification

    url = place(bert_folder, where, s3_client, s3_bucket, http_server, web_root)
    architecture = settings(architecture=str(bert_folder), pretrained=False)

    loaded = build_model(architecture, url, storage)

    assert_same_state(BertForSequenceClassification.from_pretrained(bert_folder), loaded)


def test_ultralytics_checkpoint_through_its_own_safe_loader(tmp_path: Path, storage) -> None:
    from plato_sedna.models import formats

    trained = randomized(build(architecture="yolov5n.yaml", num_classes=2))
    formats.write(trained, "ultralytics", tmp_path / "best.pt")

    loaded = build_model(
        settings(architecture="yolov5n.yaml", num_classes=2), str(tmp_path / "best.pt"), storage
    )

    assert_same_state(trained, loaded)


def test_a_pickled_module_is_refused_for_a_plain_architecture(tmp_path: Path, storage) -> None:
    import torch

    torch.save(build(**LENET), tmp_path / "whole.pth")

    with pytest.raises(
        ResourceError, match="holds pickled Python objects, not only tensors, and is not loaded"
    ):
        build_model(settings(**LENET), str(tmp_path / "whole.pth"), storage)


def test_mismatched_weights_list_the_keys(tmp_path: Path, storage) -> None:
    """Only a head for another class count is replaced (tests/test_class_counts.py); other shapes are errors."""
    import torch

    state = build(architecture="lenet5", num_classes=5).state_dict()
    state["conv1.weight"] = torch.zeros(3, 1, 5, 5)
    path = tmp_path / "lenet.pth"
    torch.save(state, path)

    with pytest.raises(ResourceError) as raised:
        build_model(settings(**LENET), str(path), storage)

    message = str(raised.value)
    assert f"the pretrained model {path} does not fit the architecture" in message
    assert "3 wrong shapes ['conv1.weight (3, 1, 5, 5) != (6, 1, 5, 5)', 'fc5.weight (5, 84) != (10, 84)'" in message


def test_missing_and_unexpected_keys_are_listed(tmp_path: Path, storage) -> None:
    import torch

    state = build(**LENET).state_dict()
    state["extra.weight"] = state.pop("conv1.weight")
    torch.save(state, tmp_path / "renamed.pth")

    with pytest.raises(
        ResourceError,
        match=r"1 missing keys \['conv1.weight'\], 1 unexpected keys \['extra.weight'\]",
    ):
        build_model(settings(**LENET), str(tmp_path / "renamed.pth"), storage)


@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_truncated_files_are_a_clear_error(kind: str, tmp_path: Path, storage) -> None:
    path = write_weights(kind, build(**LENET), tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    with pytest.raises(ResourceError, match="is corrupt or truncated and cannot be read"):
        build_model(settings(**LENET), str(path), storage)


def test_an_unreachable_url_is_a_clear_error(tmp_path: Path, cache_dir: Path) -> None:
    from support.s3_server import free_port

    from plato_sedna.storage import S3Settings, Storage

    dead = S3Settings(f"http://127.0.0.1:{free_port()}", "k", "s")
    with (
        Storage(cache_dir, dead) as storage,
        pytest.raises(ResourceError, match="cannot reach S3 endpoint"),
    ):
        build_model(settings(**LENET), "s3://bucket/lenet.pth", storage)


def test_which_url_pretrained_weights_come_from() -> None:
    def chosen(pretrained, pretrained_model_url="s3://b/pre.pth", kind="plato"):
        values = {} if pretrained is None else {"pretrained": pretrained}
        return pretrained_url(
            settings(**LENET, **values), kind, pretrained_model_url, "s3://b/model.pth"
        )

    assert chosen(None) == "s3://b/pre.pth"
    assert chosen(None, None) is None
    assert chosen(False) is None
    assert chosen(True, None) == "s3://b/model.pth"
    assert chosen(True, None, kind="huggingface") is None  # the id's own weights
    assert chosen("http://h/w.pth") == "http://h/w.pth"
