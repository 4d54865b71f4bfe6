"""How one machine grows with the trainer count: per-trainer memory and round time at 4, 8, 16, 32 trainers.

Each size runs the quickstart model (lenet5 on the digits) through ``plato-sedna run``:
N trainers sharing one Dataset, each on its iid partition (``-i k``), the aggregator
testing the global model. While a run goes, every process of it is sampled from /proc
(peak proportional set size, PSS); round times come from the published ``metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "demos" / "quickstart"
sys.path.insert(0, str(REPO / "tests"))

from support.processes import PLATO_SEDNA, plain_env

DEFAULT_SIZES = (4, 8, 16, 32)
SAMPLES_PER_TRAINER = 40
SAMPLE_EVERY_S = 0.5

CONFIG = """\
[clients]
type = "simple"
total_clients = {trainers}
per_round = {trainers}
do_test = false

[server]
address = "127.0.0.1"
port = 8000
random_seed = 1

[data]
datasource = "sednaDataResource"
sampler = "iid"
partition_size = {partition_size}
random_seed = 1

[trainer]
type = "basic"
rounds = {rounds}
epochs = 1
batch_size = 16
optimizer = "Adam"
model_name = "sednaModelResource"

[algorithm]
type = "fedavg"

[parameters.model]
architecture = "lenet5"
num_classes = 10

[parameters.optimizer]
lr = 0.003
weight_decay = 0.0
"""

HEADER = """\
apiVersion: sedna.io/v1alpha1
kind: Dataset
metadata:
  name: digits-train
spec:
  url: data/train.txt
  format: txt
  nodeName: edge1
---
apiVersion: sedna.io/v1alpha1
kind: Model
metadata:
  name: digits-lenet5
  annotations:
    plato.sedna.io/model-name: lenet5
spec:
  url: model/digits-lenet5.pth
  format: pth
---
apiVersion: sedna.io/v1alpha1
kind: FederatedLearningJob
metadata:
  name: digits-scale-{trainers}
spec:
  aggregationWorker:
    model:
      name: digits-lenet5
    template:
      spec:
        nodeName: cloud
        containers:
          - name: aggworker
            image: plato-sedna:0.1.0
            args: ["-c", "/config/scale.toml"]
            env:
              - name: TEST_DATASET_URL
                value: data/test.txt
  trainingWorkers:
"""

TRAINER = """\
    - dataset:
        name: digits-train
      template:
        spec:
          nodeName: edge{index}
          containers:
            - name: trainer
              image: plato-sedna:0.1.0
              args: ["-c", "/config/scale.toml", "-i", "{index}"]
"""


def write_scale_job(folder: Path, data: Path, trainers: int, rounds: int) -> Path:
    """A job of ``trainers`` trainers sharing the digits' training part, each its iid partition."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").symlink_to(data, target_is_directory=True)
    (folder / "scale.toml").write_text(
        CONFIG.format(trainers=trainers, partition_size=SAMPLES_PER_TRAINER, rounds=rounds)
    )
    job = folder / "job.yaml"
    job.write_text(HEADER.format(trainers=trainers) + "".join(TRAINER.format(index=i) for i in range(1, trainers + 1)))
    return job


def prepare_digits(folder: Path) -> Path:
    """The quickstart's digits (train.txt holds both edges' training data), written offline."""
    runpy.run_path(str(QUICKSTART / "prepare_data.py"))["prepare"](folder)
    return folder


@dataclass
class MemoryWatch:
    """Peak proportional memory (PSS) of every descendant of one process, by role (from its env)."""

    root: int
    peaks: dict[int, tuple[str, int]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.wait(SAMPLE_EVERY_S):
            for pid in _descendants(self.root):
                rss = _pss_bytes(pid)
                if rss is None:
                    continue
                role, peak = self.peaks.get(pid, (None, 0))
                self.peaks[pid] = (role or _role(pid), max(peak, rss))

    def peaks_of(self, role: str) -> list[int]:
        return [peak for kind, peak in self.peaks.values() if kind == role]


def _descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += map(int, children)
        queue += map(int, children)
    return found


def _pss_bytes(pid: int) -> int | None:
    """Proportional set size: private pages plus a share of pages shared with other processes
    (torch's libraries are mapped once for all trainers; resident size would count them N times)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _role(pid: int) -> str | None:
    """trainer (AGG_IP set), aggregator (AGG_BIND_PORT set), or None (a helper process)."""
    try:
        names = {item.split(b"=", 1)[0] for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")}
    except OSError:
        return None
    if b"AGG_IP" in names:
        return "trainer"
    return "aggregator" if b"AGG_BIND_PORT" in names else None


@dataclass
class ScaleResult:
    trainers: int
    status: str
    rounds: int
    accuracy: float
    seconds_per_round: float
    trainer_pss_mb: float
    aggregator_pss_mb: float
    total_pss_mb: float
    elapsed_s: float


def run_size(workdir: Path, data: Path, trainers: int, rounds: int, timeout_s: float) -> ScaleResult:
    job = write_scale_job(workdir / "job", data, trainers, rounds)
    run = workdir / "run"
    env = {**plain_env(), "OMP_NUM_THREADS": "1", "CONNECT_TIMEOUT": str(int(timeout_s))}
    started = time.monotonic()
    process = subprocess.Popen(
        [*PLATO_SEDNA, "run", str(job), "--workdir", str(run), "--timeout", str(int(timeout_s))],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    watch = MemoryWatch(process.pid)
    sampler = threading.Thread(target=watch.run, daemon=True)
    sampler.start()
    process.wait(timeout=timeout_s + 120)
    watch.stop.set()
    sampler.join()
    summary = json.loads((run / "summary.json").read_text())
    history = json.loads((run / "model" / "metrics.json").read_text())["history"] if summary["status"] == "succeeded" else []
    elapsed = [record["elapsed_s"] for record in history]
    # Round 1 also holds the trainers' start (imports, data); later rounds are the steady state.
    per_round = statistics.fmean(b - a for a, b in zip(elapsed, elapsed[1:])) if len(elapsed) > 1 else float("nan")
    trainer_peaks = watch.peaks_of("trainer")
    return ScaleResult(
        trainers=trainers,
        status=summary["status"],
        rounds=summary.get("rounds") or 0,
        accuracy=summary.get("accuracy") or 0.0,
        seconds_per_round=per_round,
        trainer_pss_mb=statistics.fmean(trainer_peaks) / 2**20 if trainer_peaks else float("nan"),
        aggregator_pss_mb=max(watch.peaks_of("aggregator"), default=0) / 2**20,
        total_pss_mb=sum(peak for _, peak in watch.peaks.values()) / 2**20,
        elapsed_s=time.monotonic() - started,
    )


def print_table(results: list[ScaleResult]) -> None:
    base = results[0]
    print(f"{'trainers':>8} {'status':>9} {'rounds':>6} {'accuracy':>8} {'s/round':>8} {'x':>6} "
          f"{'MB/trainer':>10} {'x':>6} {'aggr MB':>8} {'sum MB':>8} {'wall s':>7}")
    for result in results:
        print(
            f"{result.trainers:>8} {result.status:>9} {result.rounds:>6} {result.accuracy:>8.4f} "
            f"{result.seconds_per_round:>8.2f} {result.seconds_per_round / base.seconds_per_round:>6.2f} "
            f"{result.trainer_pss_mb:>10.1f} {result.trainer_pss_mb / base.trainer_pss_mb:>6.2f} "
            f"{result.aggregator_pss_mb:>8.1f} {result.total_pss_mb:>8.1f} {result.elapsed_s:>7.1f}"
        )
    print(f"ratios (x) are against {base.trainers} trainers; s/round excludes round 1 (start-up); "
          "MB are peak PSS per process (sum: of all the run's processes' peaks)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainers", default=",".join(map(str, DEFAULT_SIZES)), help="comma-separated trainer counts")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="CI size: 2 and 4 trainers, 2 rounds")
    parser.add_argument("--timeout", type=float, default=1500, help="seconds per run")
    args = parser.parse_args(argv)
    sizes = (2, 4) if args.small else tuple(int(n) for n in args.trainers.split(","))
    rounds = 2 if args.small else args.rounds
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
        data = prepare_digits(Path(folder) / "digits")
        results = []
        for trainers in sizes:
            result = run_size(Path(folder) / f"n{trainers}", data, trainers, rounds, args.timeout)
            print(f"{trainers} trainers: {result.status} in {result.elapsed_s:.0f} s", flush=True)
            results.append(result)
        print_table(results)
    print(f"cpu cores: {os.cpu_count()}")
    return 0 if all(result.status == "succeeded" for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
