"""Shared fixtures: the quickstart's digits data, written once per test session."""

from __future__ import annotations

import runpy
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "demos" / "quickstart"
sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def digits_data(tmp_path_factory) -> Path:
    """The digits images and indexes (edge1.txt, edge2.txt, test.txt) in a session folder."""
    # By path: every demo has a prepare_data.py, and they must not shadow each other.
    prepare = runpy.run_path(str(QUICKSTART / "prepare_data.py"))["prepare"]
    out_dir = tmp_path_factory.mktemp("digits")
    prepare(out_dir)
    return out_dir


@pytest.fixture
def quickstart_job(tmp_path: Path, digits_data: Path) -> Path:
    """A copy of the quickstart's job.yaml and fedavg.toml beside the session's data."""
    job_dir = tmp_path / "quickstart"
    job_dir.mkdir()
    for name in ("job.yaml", "fedavg.toml"):
        shutil.copy(QUICKSTART / name, job_dir / name)
    (job_dir / "data").symlink_to(digits_data, target_is_directory=True)
    return job_dir / "job.yaml"
