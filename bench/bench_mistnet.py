"""Bytes each trainer uploads and wall time, MistNet vs FedAvg, on the quickstart (lenet5, digits), to one accuracy target."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "demos" / "quickstart"
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(QUICKSTART))

from bench_transmitter import SITECUSTOMIZE, run_job
from test_mistnet_e2e import edit_job, pretrain_lenet5

# name -> (config, pretrained front?, extra pod env)
RUNS = {
    "fedavg": ("fedavg.toml", False, {}),
    "fedavg-pretrained": ("fedavg.toml", True, {}),
    "mistnet": ("mistnet.yml", True, {}),
    "mistnet-eps2": ("mistnet.yml", True, {"epsilon": "2"}),
}


@dataclass(frozen=True)
class Outcome:
    """One run: what each trainer emitted on the socket, and how it ended."""

    uploaded: list[int]
    rounds: int
    accuracy: float
    job_s: float
    training_s: float


def prepare_run(folder: Path, data: Path, run: str, target: float, pretrained: Path) -> Path:
    """The quickstart job in ``folder`` for ``run``: FedAvg stops at ``target``; MistNet has one round."""
    config, uses_pretrained, env = RUNS[run]
    folder.mkdir()
    (folder / "data").symlink_to(data, target_is_directory=True)
    shutil.copy(QUICKSTART / "job.yaml", folder / "job.yaml")
    toml = (QUICKSTART / "fedavg.toml").read_text().replace("target_accuracy = 0.97", f"target_accuracy = {target}")
    (folder / "fedavg.toml").write_text(toml)
    yml = (QUICKSTART / "mistnet.yml").read_text()
    if run == "mistnet":
        yml = "".join(line for line in yml.splitlines(keepends=True) if not line.startswith("  epsilon:"))
    (folder / "mistnet.yml").write_text(yml)
    edit_job(folder / "job.yaml", f"/config/{config}", pretrained if uses_pretrained else None, env)
    return folder / "job.yaml"


def measure(job: Path, work: Path, hooks: Path, timeout_s: float) -> Outcome:
    meter = work / "meter"
    started = time.monotonic()
    run_job(job, work / "workdir", meter, hooks, timeout_s)
    job_s = time.monotonic() - started
    uploaded: dict[Path, int] = defaultdict(int)  # the meter writes one file per process
    for path in meter.glob("*.jsonl"):
        for record in map(json.loads, path.read_text().splitlines()):
            if record["side"] == "trainer":
                uploaded[path] += record["bytes"]
    summary = json.loads((work / "workdir" / "summary.json").read_text())
    metrics = json.loads((Path(summary["model_url"]).parent / "metrics.json").read_text())
    return Outcome(sorted(uploaded.values()), summary["rounds"], summary["accuracy"], job_s, metrics["elapsed_s"])


def print_side_by_side(outcomes: dict[str, Outcome], target: float) -> None:
    print(f"\nquickstart: lenet5 on digits, 2 trainers, accuracy target {target:.2f} (MistNet: one round)")
    print(f"{'run':<18} {'rounds':>6} {'accuracy':>8} {'target':>6} {'up B/trainer (each)':>28} {'training s':>10} {'job s':>7}")
    for name, outcome in outcomes.items():
        each = " / ".join(f"{size:,}" for size in outcome.uploaded)
        reached = "yes" if outcome.accuracy >= target else "no"
        print(
            f"{name:<18} {outcome.rounds:>6} {outcome.accuracy:>8.4f} {reached:>6} {each:>28} "
            f"{outcome.training_s:>10.2f} {outcome.job_s:>7.1f}"
        )
    if "fedavg" in outcomes and "mistnet" in outcomes:
        ratio = max(outcomes["fedavg"].uploaded) / max(outcomes["mistnet"].uploaded)
        print(f"upload per trainer, fedavg / mistnet: {ratio:.1f}x")


def main(argv: list[str] | None = None) -> int:
    """Run each variant once and print them side by side."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", type=float, default=0.90, help="accuracy target (default 0.90)")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS), help="variants to run")
    parser.add_argument("--pretrain-epochs", type=int, default=2, help="centralised epochs of the pretrained front")
    parser.add_argument("--run-timeout", type=float, default=600, help="seconds before a run is stopped")
    args = parser.parse_args(argv)
    from prepare_data import prepare

    with tempfile.TemporaryDirectory(prefix="bench_mistnet_") as folder:
        work = Path(folder)
        hooks = work / "hooks"
        hooks.mkdir()
        (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
        data = work / "data"
        data.mkdir()
        prepare(data)
        pretrained = pretrain_lenet5(data / "edge1.txt", work / "pretrained.pth", epochs=args.pretrain_epochs)
        outcomes = {}
        for run in args.runs:
            job = prepare_run(work / run, data, run, args.target, pretrained)
            outcomes[run] = measure(job, work / run, hooks, args.run_timeout)
            print(f"{run}: done, {outcomes[run]}", flush=True)
        print_side_by_side(outcomes, args.target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
