"""Parse time and peak memory of a large Sedna txt index (default 1,000,000 lines).

Usage::

    .venv/bin/python bench/bench_index.py                 # 1,000,000 lines, 3 runs
    .venv/bin/python bench/bench_index.py --lines 10000 --runs 1

Writes an index of ``--lines`` lines (``class_k/nnnnnnn.png k``) that names
``--files`` distinct image files (created empty, each listed lines/files times) in
100 class folders, then reads it with the datasource's txt reader: every line split,
checked (relative path inside the root, file exists, label) and coded. Prints each
run's time, the median against the target (< 3 s), the process's peak RSS, and the
peak memory of one read traced by ``tracemalloc`` against its target (< 400 MB).
Prints numbers, never asserts them.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from plato_sedna.datasources.formats.txt import read_txt_index
from plato_sedna.datasources.options import ReadOptions
from plato_sedna.datasources.samples import Origin

TIME_TARGET_S = 3.0
MEMORY_TARGET_MB = 400.0
CLASSES = 100
MB = 1024 * 1024


def write_dataset(folder: Path, lines: int, files: int) -> Path:
    """The index, and the empty files it names."""
    names = [f"class_{i % CLASSES}/{i:07d}.png" for i in range(min(files, lines))]
    for class_index in range(CLASSES):
        (folder / f"class_{class_index}").mkdir()
    for name in names:
        (folder / name).touch()
    index = folder / "train.txt"
    with index.open("w") as out:
        out.write("# a benchmark index\n")
        for i in range(lines):
            name = names[i % len(names)]
            out.write(f"{name} {name.split('/')[0].removeprefix('class_')}\n")
    return index


def read(index: Path):
    origin = Origin(f"dataset {index}", str(index), str(index.parent))
    return read_txt_index(index, origin, ReadOptions(origin.dataset))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lines", type=int, default=1_000_000, help="index lines (default 1,000,000)"
    )
    parser.add_argument(
        "--files",
        type=int,
        default=10_000,
        help="distinct files named (default 10,000)",
    )
    parser.add_argument("--runs", type=int, default=3, help="timed reads (default 3)")
    args = parser.parse_args()

    work_dir = Path(tempfile.mkdtemp(prefix="bench-index-"))
    try:
        index = write_dataset(work_dir, args.lines, args.files)
        size_mb = index.stat().st_size / MB
        named = min(args.files, args.lines)
        print(f"index: {args.lines:,} lines ({size_mb:.1f} MB) naming {named:,} files")
        times, cpu_times = [], []
        for run in range(args.runs):
            started, cpu_started = time.perf_counter(), time.process_time()
            samples = read(index)
            times.append(time.perf_counter() - started)
            cpu_times.append(time.process_time() - cpu_started)
            print(
                f"run {run + 1}: parsed {len(samples):,} samples, {len(samples.classes)} classes "
                f"in {times[-1]:.3f} s (CPU {cpu_times[-1]:.3f} s)"
            )
            del samples
        median = statistics.median(times)
        print(
            f"parse time (median of {args.runs}): {median:.3f} s "
            f"(CPU {statistics.median(cpu_times):.3f} s), "
            f"ratio to target {median / TIME_TARGET_S:.3f} (target < {TIME_TARGET_S:g} s)"
        )
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"peak RSS of this process (interpreter and writing the index included): {rss_mb:.1f} MB"
        )
        tracemalloc.start()
        samples = read(index)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peak_mb = peak / MB
        print(
            f"peak memory of one parse (tracemalloc): {peak_mb:.1f} MB, "
            f"ratio to target {peak_mb / MEMORY_TARGET_MB:.3f} (target < {MEMORY_TARGET_MB:g} MB)"
        )
        del samples
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
