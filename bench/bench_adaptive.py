"""Bytes uploaded and rounds to an accuracy target: FedAvg vs adaptive_freezing vs adaptive_sync on the quickstart."""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from quickstart_runs import QUICKSTART, edit_job, quickstart_folder, run_for_history

# Each variant runs the quickstart job with its demo config (demos/quickstart/<config>).
CONFIGS = {"fedavg": "fedavg.toml", "adaptive_freezing": "adaptive_freezing.toml", "adaptive_sync": "adaptive_sync.toml"}
SIZES = {"full": (10, 0.97), "small": (2, 0.85)}  # (rounds at most, accuracy target)


@dataclass(frozen=True)
class Outcome:
    """One run: uploads (what the aggregator received) per round, accuracies, and wall time."""

    uploaded: list[int]
    accuracies: list[float]
    job_s: float

    def round_reaching(self, target: float) -> int | None:
        return next((index + 1 for index, accuracy in enumerate(self.accuracies) if accuracy >= target), None)

    def uploaded_until(self, target: float) -> int:
        """Bytes uploaded up to the round that reached ``target`` (all rounds when none did)."""
        return sum(self.uploaded[: self.round_reaching(target) or len(self.uploaded)])


def unavailable(variant: str) -> str | None:
    """Why ``variant`` cannot run in this checkout, or None."""
    from plato_sedna.registration import ENTRIES

    if variant == "fedavg":
        return None
    if not (QUICKSTART / CONFIGS[variant]).is_file():
        return f"demos/quickstart/{CONFIGS[variant]} is missing"
    registered = {key for module, _, key, _ in ENTRIES if module == "plato.servers.registry"}
    if variant not in registered or importlib.util.find_spec(f"plato_sedna.servers.{variant}") is None:
        return f"the {variant} algorithm is not registered in plato_sedna yet"
    return None


def measure(folder: Path, data: Path, variant: str, rounds: int, target: float) -> Outcome:
    """The quickstart job with ``variant``'s config, stopping at ``target`` or after ``rounds``."""
    job = quickstart_folder(folder, data)
    shutil.copy(QUICKSTART / CONFIGS[variant], folder / CONFIGS[variant])
    env = {"rounds": str(rounds), "target_accuracy": str(target)}
    edit_job(job, f"/config/{CONFIGS[variant]}", None, env)
    history, job_s = run_for_history(folder, variant)
    return Outcome([r["bytes_received"] for r in history], [r["accuracy"] for r in history], job_s)


def print_side_by_side(outcomes: dict[str, Outcome], rounds: int, target: float) -> None:
    print(f"\nquickstart: lenet5 on digits, 2 trainers, accuracy target {target:.2f}, at most {rounds} rounds")
    print(f"{'run':<18} {'rounds':>6} {'to target':>9} {'accuracy':>8} {'uploaded B':>12} {'vs fedavg':>9} {'B/round':>10} {'job s':>7}")
    baseline = outcomes.get("fedavg")
    for name, outcome in outcomes.items():
        reached = outcome.round_reaching(target)
        uploaded = outcome.uploaded_until(target)
        ratio = f"{uploaded / baseline.uploaded_until(target):.3f}" if baseline else "-"
        per_round = uploaded / (reached or len(outcome.uploaded))
        print(
            f"{name:<18} {len(outcome.uploaded):>6} {reached or 'no':>9} {outcome.accuracies[-1]:>8.4f} "
            f"{uploaded:>12,} {ratio:>9} {per_round:>10,.0f} {outcome.job_s:>7.1f}"
        )
    print("uploaded B: what the aggregator received from both trainers up to the round that reached the target")


def main(argv: list[str] | None = None) -> int:
    """Run each variant once and print them side by side."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="CI size: 2 rounds, target 0.85")
    parser.add_argument("--runs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS), help="variants to run")
    args = parser.parse_args(argv)
    rounds, target = SIZES["small" if args.small else "full"]
    from prepare_data import prepare

    with tempfile.TemporaryDirectory(prefix="bench_adaptive_") as folder:
        work = Path(folder)
        data = work / "data"
        data.mkdir()
        prepare(data)
        outcomes = {}
        for variant in args.runs:
            reason = unavailable(variant)
            if reason is not None:
                print(f"{variant}: skipped ({reason})", flush=True)
                continue
            outcomes[variant] = measure(work / variant, data, variant, rounds, target)
            print(f"{variant}: done, {outcomes[variant]}", flush=True)
        print_side_by_side(outcomes, rounds, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
