"""bench/bench_index.py at a small size prints its time and memory lines against their targets."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_index.py"
EXPECTED_LINES = (
    r"^index: 2,000 lines \(\d+\.\d MB\) naming 200 files$",
    r"^run 1: parsed 2,000 samples, 100 classes in \d+\.\d{3} s \(CPU \d+\.\d{3} s\)$",
    r"^parse time \(median of 1\): \d+\.\d{3} s \(CPU \d+\.\d{3} s\), ratio to target \d+\.\d{3} \(target < 3 s\)$",
    r"^peak memory of one parse \(tracemalloc\): \d+\.\d MB, ratio to target \d+\.\d{3} \(target < 400 MB\)$",
    r"^peak RSS of this process .*: \d+\.\d MB$",
)


def test_bench_index_small_size_prints_its_lines(tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(BENCH),
        "--lines",
        "2000",
        "--files",
        "200",
        "--runs",
        "1",
    ]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr[-3000:]
    for pattern in EXPECTED_LINES:
        assert re.search(pattern, result.stdout, re.MULTILINE), (
            f"{pattern!r} not in:\n{result.stdout}"
        )
