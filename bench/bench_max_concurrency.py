"""Seconds per round of the quickstart job with and without trainer.max_concurrency = 3 (pods train in-process)."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from quickstart_runs import QUICKSTART, edit_job, quickstart_folder, run_for_history

TARGET_RATIO = 1.1
VARIANTS = ("max_concurrency=3", "without")


@dataclass(frozen=True)
class Outcome:
    """One run: the aggregator's elapsed seconds at the end of each round, and the job's wall time."""

    elapsed_s: list[float]
    job_s: float

    @property
    def seconds_per_round(self) -> float:
        """Mean gap between rounds, round 1 left out (it also waits for the trainers to join)."""
        gaps = [later - earlier for earlier, later in zip(self.elapsed_s, self.elapsed_s[1:])]
        return statistics.mean(gaps) if gaps else float("nan")


def _config(folder: Path, variant: str) -> None:
    text = (QUICKSTART / "fedavg.toml").read_text()
    if variant == "max_concurrency=3":
        text = text.replace("[trainer]\n", "[trainer]\nmax_concurrency = 3\n", 1)
        assert "max_concurrency = 3" in text
    (folder / "fedavg.toml").write_text(text)


def measure(folder: Path, data: Path, variant: str, rounds: int) -> Outcome:
    """The quickstart job (2 trainers), every round run: target_accuracy 1.0 is never reached."""
    job = quickstart_folder(folder, data)
    _config(folder, variant)
    edit_job(job, "/config/fedavg.toml", None, {"rounds": str(rounds), "target_accuracy": "1.0"})
    history, job_s = run_for_history(folder, variant)
    return Outcome([record["elapsed_s"] for record in history], job_s)


def main(argv: list[str] | None = None) -> int:
    """Run both variants (alternating, ``--runs`` times each) and print s/round and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="rounds per job (default 5; at least 2)")
    parser.add_argument("--runs", type=int, default=1, help="jobs per variant (default 1)")
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error("--rounds must be at least 2: round 1 is left out of s/round")
    from prepare_data import prepare

    per_round: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="bench_max_concurrency_") as folder:
        work = Path(folder)
        data = work / "data"
        data.mkdir()
        prepare(data)
        for index in range(args.runs):
            for number, variant in enumerate(VARIANTS):
                outcome = measure(work / f"{index}-{number}", data, variant, args.rounds)
                per_round[variant].append(outcome.seconds_per_round)
                print(
                    f"run {index + 1}/{args.runs} {variant:<18} {outcome.seconds_per_round:6.2f} s/round "
                    f"(rounds 2..{len(outcome.elapsed_s)}), job {outcome.job_s:6.1f} s",
                    flush=True,
                )
    with_it, without = (statistics.median(per_round[variant]) for variant in VARIANTS)
    print(f"quickstart (lenet5, digits, 2 trainers, {args.rounds} rounds), median of {args.runs}:")
    print(f"  max_concurrency=3: {with_it:.2f} s/round")
    print(f"  without:           {without:.2f} s/round")
    print(f"  ratio max_concurrency=3 / without: {with_it / without:.3f} (goal <= {TARGET_RATIO})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
