"""Scale on one machine: 8 trainers (separate processes) through `plato-sedna run` complete their rounds.

bench/bench_scale.py runs 4, 8, 16 and 32 and prints memory and round time as the count doubles.
"""

from __future__ import annotations

import json
import runpy
import subprocess
from pathlib import Path

from support.processes import PLATO_SEDNA, plain_env

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_scale.py"
TRAINERS = 8
TIMEOUT_S = 900


def test_eight_trainers_each_train_every_round(tmp_path: Path, digits_data: Path) -> None:
    write_scale_job = runpy.run_path(str(BENCH))["write_scale_job"]
    job = write_scale_job(tmp_path / "job", digits_data, TRAINERS, rounds=2)
    workdir = tmp_path / "run"

    result = subprocess.run(
        [*PLATO_SEDNA, "run", str(job), "--workdir", str(workdir), "--timeout", str(TIMEOUT_S)],
        env={**plain_env(), "OMP_NUM_THREADS": "1", "CONNECT_TIMEOUT": str(TIMEOUT_S)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S + 60,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "succeeded" and summary["rounds"] == 2
    assert len(summary["workers"]) == TRAINERS + 1
    assert {worker["exit_code"] for worker in summary["workers"].values()} == {0}
    history = json.loads((workdir / "model" / "metrics.json").read_text())["history"]
    assert [record["clients"] for record in history] == [TRAINERS, TRAINERS]
    log = (workdir / "aggregator" / "worker.log").read_text()
    assert {f"digits-train#{i} is client #{i}" for i in range(1, TRAINERS + 1)} <= {
        line.split("Trainer ", 1)[1].strip() for line in log.splitlines() if "Trainer digits-train#" in line and " is client #" in line
    }
