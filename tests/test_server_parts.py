"""The aggregator's pieces that need no sockets: trainer roster, publishing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from plato_sedna.errors import ResourceError
from plato_sedna.models import publish
from plato_sedna.servers.identity import TrainerRoster


def test_roster_keeps_ids_across_rejoins_and_honours_preferred_ids() -> None:
    roster = TrainerRoster(capacity=3)

    assert roster.assign("edge-b", preferred_id=2) == 2
    assert roster.assign("edge-a") == 1
    assert roster.assign("edge-c", preferred_id=2) == 3  # 2 is taken: lowest free
    assert roster.assign("edge-a", preferred_id=3) == 1  # a rejoin keeps its id
    assert roster.assign("stranger") is None  # every slot is taken
    assert roster.identity_of(3) == "edge-c"


def test_publish_writes_model_and_metrics_atomically(tmp_path: Path) -> None:
    import torch

    destination = publish.publish(str(tmp_path / "out" / "m.pth"), {"w": torch.ones(2)}, {"rounds": 3})

    assert destination == tmp_path / "out" / "m.pth"
    assert torch.load(destination, weights_only=True)["w"].tolist() == [1.0, 1.0]
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == {"rounds": 3}
    assert sorted(p.name for p in destination.parent.iterdir()) == ["m.pth", "metrics.json"]
    assert os.stat(destination).st_mode & 0o777 == 0o644


def test_a_failed_write_leaves_the_published_model_untouched(tmp_path: Path) -> None:
    target = tmp_path / "m.pth"
    target.write_bytes(b"previous")

    def broken(file):
        file.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        publish.write_atomically(target, broken)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["m.pth"]


def test_model_url_forms(tmp_path: Path) -> None:
    assert publish.model_path(f"{tmp_path}/") == tmp_path / "model.pth"
    assert publish.model_path(str(tmp_path)) == tmp_path / "model.pth"
    assert publish.model_path(f"file://{tmp_path}/x.pth") == tmp_path / "x.pth"
    with pytest.raises(ResourceError, match="remote"):
        publish.model_path("s3://bucket/model.pth")


def test_the_roster_is_restored_for_the_same_job_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "checkpoints" / "trainer_ids.json"
    roster = TrainerRoster(capacity=3)
    roster.assign("digits-edge2")
    roster.assign("digits-edge1")
    roster.save(path, "digits-fedavg")

    restored = TrainerRoster.restore(path, 3, "digits-fedavg")
    # rejoining in the other order, each trainer gets the id it had
    assert restored.assign("digits-edge1") == 2 and restored.assign("digits-edge2") == 1
    assert TrainerRoster.restore(path, 3, "another-job").ids_by_identity == {}
    assert TrainerRoster.restore(path, 1, "digits-fedavg").ids_by_identity == {"digits-edge2": 1}
    assert TrainerRoster.restore(tmp_path / "none.json", 3, "digits-fedavg").ids_by_identity == {}
    assert [p.name for p in path.parent.iterdir()] == ["trainer_ids.json"]  # no temporary file left

    path.write_text("{not json")
    assert TrainerRoster.restore(path, 3, "digits-fedavg").ids_by_identity == {}
    assert "cannot be read" in caplog.text
