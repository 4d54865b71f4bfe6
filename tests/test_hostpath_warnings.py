"""What the nodes need for hostPath urls: render's notes, validate's warnings, the aggregator's start error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import QUICKSTART

from plato_sedna.errors import ConfigError
from plato_sedna.tools import node_paths


def _render(tmp_path: Path, capsys, model_url: str, *extra: str) -> tuple[int, str]:
    from plato_sedna.tools.render import main

    status = main([
        "-c", str(QUICKSTART / "fedavg.toml"),
        "--trainer", "edge1=/data/edge1/train.txt", "--trainer", "edge2=/data/edge2/train.txt",
        "--model-url", model_url, "--architecture", "lenet5", "-o", str(tmp_path / "m"), *extra,
    ])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_render_says_which_folders_each_node_needs(tmp_path: Path, capsys) -> None:
    status, output = _render(tmp_path, capsys, "/models/digits", "--aggregator-node", "cloud")
    assert status == 0
    assert "/models (mounted for the Model's url in every worker) must exist on node(s) cloud, edge1, edge2" in output
    assert "/models/digits (the aggregator publishes the model there) must exist on node(s) cloud, writable by uid 1000" in output
    assert "sudo chown 1000 /models/digits" in output
    assert "/data/edge1 (a Dataset's folder) must exist on node(s) edge1" in output


def test_validate_warns_about_the_model_folder(tmp_path: Path, capsys) -> None:
    from plato_sedna.tools.validate import main

    assert _render(tmp_path, capsys, "/models/digits/net.pth", "--aggregator-node", "cloud")[0] == 0
    assert main([str(tmp_path / "m" / "job.yaml")]) == 0
    output = capsys.readouterr().out
    assert "spec.url: warning: hostPath: /models/digits (the aggregator publishes the model there) must exist on " \
        "node(s) cloud, writable by uid 1000" in output
    assert "spec.url: note: hostPath: /models/digits (mounted for the Model's url in every trainer) must exist on " \
        "node(s) edge1, edge2" in output


def test_validate_says_when_the_folder_here_is_not_writable_by_uid_1000(tmp_path: Path, capsys) -> None:
    from plato_sedna.tools.validate import main

    folder = tmp_path / "model"
    folder.mkdir()
    os.chmod(folder, 0o755)  # owned by this user (not uid 1000 in the tests), not writable by others
    if folder.stat().st_uid == node_paths.IMAGE_UID:
        pytest.skip("the tests run as uid 1000")
    assert _render(tmp_path, capsys, str(folder))[0] == 0
    assert main([str(tmp_path / "m" / "job.yaml")]) == 0
    output = capsys.readouterr().out
    assert f"{folder} exists on this machine and is not writable by uid 1000 (the image's user): " \
        f"sudo chown 1000 {folder}" in output
    os.chmod(folder, 0o777)
    assert main([str(tmp_path / "m" / "job.yaml")]) == 0
    assert "not writable by uid 1000" not in capsys.readouterr().out


def test_validate_warns_about_a_trailing_slash(tmp_path: Path, capsys) -> None:
    from plato_sedna.tools.validate import main

    assert _render(tmp_path, capsys, "/model/")[0] == 0
    assert main([str(tmp_path / "m" / "job.yaml")]) == 0
    assert "ends in '/': Sedna mounts host /model/ at /home/data/" in capsys.readouterr().out


def test_writable_by(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    os.chmod(folder, 0o700)
    owner = folder.stat().st_uid
    assert node_paths.writable_by(folder, uid=owner, gid=-1)
    assert not node_paths.writable_by(folder, uid=owner + 12345, gid=-1)
    os.chmod(folder, 0o777)
    assert node_paths.writable_by(folder, uid=owner + 12345, gid=-1)
    assert node_paths.writable_by(tmp_path / "missing") is None


def test_the_aggregator_names_an_unwritable_model_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plato_sedna import preflight

    folder = tmp_path / "home" / "data" / "model"
    folder.mkdir(parents=True)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == folder else real_access(path, mode, **kw))
    with pytest.raises(ConfigError) as raised:
        preflight.check_model_url(str(folder))
    message = str(raised.value)
    assert f"cannot write the Model folder {folder}" in message
    assert f"uid {os.getuid()}" in message and f"sudo chown {os.getuid()} {folder}" in message
    assert "initContainer" in message
    preflight.check_model_url(str(tmp_path / "elsewhere" / "model"))  # creatable: fine


def test_a_sedna_mount_is_named_by_its_host_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    from plato_sedna import preflight

    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False)
    with pytest.raises(ConfigError, match=r"sudo mkdir -p /model && sudo chown \d+ /model"):
        preflight.check_model_folder_writable("/home/data/model")
    preflight.check_model_folder_writable("/downloads/bucket/models/net.pth")  # published to the s3 url instead
