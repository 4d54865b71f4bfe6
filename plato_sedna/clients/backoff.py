"""Waiting for the aggregator: retry delays and the deadline they run against."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

RETRY_DELAYS_S = (1, 1, 2, 3, 5, 8, 13)


@dataclass
class Deadline:
    """A time budget, in seconds, started at construction."""

    budget_s: float
    started_at: float = field(default_factory=time.monotonic)

    @property
    def used_s(self) -> float:
        return time.monotonic() - self.started_at

    @property
    def left_s(self) -> float:
        return max(0.0, self.budget_s - self.used_s)


def retry_delays(deadline: Deadline) -> Iterator[float]:
    """Delays to sleep between attempts; the last delay repeats until the deadline."""
    index = 0
    while deadline.left_s > 0:
        delay = RETRY_DELAYS_S[min(index, len(RETRY_DELAYS_S) - 1)]
        index += 1
        yield min(delay, deadline.left_s)
