"""bench/bench_launcher.py in its quick mode runs offline and prints its ratio and import lines."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_launcher.py"
BENCH_TIMEOUT_S = 400  # above the bench's own --run-timeout, which kills a hung run's clients too
EXPECTED_LINES = (
    r"^run 1/1 Plato +\d+\.\d+ s$",
    r"^run 1/1 plato +\d+\.\d+ s$",
    r"^wall-time ratio plato/Plato \(median of 1\): \d+\.\d{3} \(target <= 1\.05\)$",
    r"^import plato_sedna after Plato's registries .*: \d+\.\d{3} s \(target <= 0\.3\)$",
    r"^import plato_sedna alone .*: -?\d+\.\d{3} s$",
)


@pytest.mark.slow
def test_bench_quick_mode_prints_ratios(tmp_path: Path) -> None:
    command = [sys.executable, str(BENCH), "--runs", "1", "--rounds", "1", "--import-reps", "1"]
    command += ["--run-timeout", "150"]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=BENCH_TIMEOUT_S
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    for pattern in EXPECTED_LINES:
        assert re.search(pattern, result.stdout, re.MULTILINE), f"{pattern!r} not in:\n{result.stdout}"


@pytest.mark.slow
@pytest.mark.extended
def test_bench_adaptive_small_prints_each_variant_against_fedavg(tmp_path: Path) -> None:
    """bench/bench_adaptive.py --small: FedAvg and adaptive freezing (adaptive_sync when registered), with ratios."""
    bench = BENCH.parent / "bench_adaptive.py"
    command = [sys.executable, str(bench), "--small"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert re.search(r"^fedavg +[12] .* 1\.000 ", result.stdout, re.MULTILINE), result.stdout
    assert re.search(r"^adaptive_freezing +[12] .* \d\.\d{3} ", result.stdout, re.MULTILINE), result.stdout
    assert re.search(r"^adaptive_sync(: skipped \(.+\)| +\d+ .* \d+\.\d{3} )", result.stdout, re.MULTILINE), result.stdout
