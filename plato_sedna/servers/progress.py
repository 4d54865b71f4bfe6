"""Per-round progress: the history of a job, and the line ``plato-sedna run`` reads."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field

PROGRESS_MARKER = "PLATO_SEDNA_PROGRESS"
# What metrics.json says a round's accuracy was measured on when nothing was tested.
NOT_TESTED = "not tested"


def reported_accuracy(accuracy) -> float | None:
    """A server's accuracy as reported: None when it tested nothing (never 0.0 in its place)."""
    return None if accuracy is None else float(accuracy)


@dataclass(frozen=True)
class RoundRecord:
    """What one aggregated round produced."""

    round: int
    accuracy: float | None  # None: nothing was tested
    elapsed_s: float
    clients: int
    loss: float | None = None
    bytes_sent: int = 0  # payload bytes on the socket to trainers in this round
    bytes_received: int = 0  # and from them


@dataclass
class JobProgress:
    """Rounds done so far, and why the job stopped once it has."""

    rounds_planned: int
    history: list[RoundRecord] = field(default_factory=list)
    stop_reason: str | None = None
    # Trainers lost, rejoining or missing: job-level events, and per round what was missing.
    trainer_events: list[dict] = field(default_factory=list)
    round_trainers: dict[int, dict] = field(default_factory=dict)

    def metrics(self) -> dict:
        """The content of ``metrics.json``."""
        last = self.history[-1] if self.history else None
        untested = {"tested_on": NOT_TESTED} if last and last.accuracy is None else {}
        return {
            "rounds": last.round if last else 0,
            "rounds_planned": self.rounds_planned,
            "accuracy": last.accuracy if last else None,
            "elapsed_s": last.elapsed_s if last else 0.0,
            "stop_reason": self.stop_reason,
            "history": [asdict(record) | self.round_trainers.get(record.round, {}) for record in self.history],
            "trainer_events": list(self.trainer_events),
            **untested,
        }

    def announce(self, record: RoundRecord) -> None:
        """Print the machine-readable progress line for ``plato-sedna run``."""
        payload = {
            "round": record.round,
            "rounds": self.rounds_planned,
            "accuracy": record.accuracy,
            "loss": record.loss,
            "elapsed_s": record.elapsed_s,
        }
        print(f"{PROGRESS_MARKER} {json.dumps(payload)}", file=sys.stdout, flush=True)
