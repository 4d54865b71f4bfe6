"""The quickstart job run once through `plato-sedna run`, for benchmarks that compare variants of it."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "demos" / "quickstart"
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(QUICKSTART))

from test_mistnet_e2e import edit_job  # noqa: E402
from test_quickstart_e2e import run_job  # noqa: E402


def quickstart_folder(folder: Path, data: Path) -> Path:
    """``folder`` with the quickstart's job.yaml and its data linked in; returns the job file."""
    folder.mkdir()
    (folder / "data").symlink_to(data, target_is_directory=True)
    shutil.copy(QUICKSTART / "job.yaml", folder / "job.yaml")
    return folder / "job.yaml"


def run_for_history(folder: Path, variant: str) -> tuple[list[dict], float]:
    """Run ``folder/job.yaml``: the aggregator's per-round metrics history and the job's seconds.

    Exits with the job's output tail when it fails.
    """
    started = time.monotonic()
    result = run_job(folder / "job.yaml", folder / "run")
    job_s = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{variant}: the job failed\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    summary = json.loads((folder / "run" / "summary.json").read_text())
    history = json.loads((Path(summary["model_url"]).parent / "metrics.json").read_text())["history"]
    return history, job_s


__all__ = ["QUICKSTART", "edit_job", "quickstart_folder", "run_for_history"]
