"""GIFT's rule for tau, the local epochs per round: halve it at each gradient bifurcation.

The aggregator tracks the minimum of the consistency rate C. When ``window``
rounds pass without a new minimum, the trainers' updates have stopped becoming
less consistent ("gradient bifurcation"): past the warm-up, tau becomes
``ceil(tau / 2)`` (never below 1), the minimum and the moving averages start
over, and the window doubles. tau only shrinks: synchronization only becomes
more frequent.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_MINIMUM = 1.1  # above any C, so that the first rate observed is a new minimum
SHRINK_FACTOR = 2


@dataclass(frozen=True)
class SyncDecision:
    """What one round's consistency rate led to."""

    round: int
    consistency_rate: float
    sync_frequency: int  # tau the trainers ran in this round
    next_sync_frequency: int  # tau for the next round
    minimum: float  # the lowest C since tau was last lowered, this round's included
    new_minimum: bool
    bifurcation: bool

    @property
    def lowered(self) -> bool:
        """tau was lowered: the moving averages must start over."""
        return self.next_sync_frequency < self.sync_frequency


class SyncFrequency:
    """tau and the bifurcation state, fed one consistency rate per aggregated round."""

    def __init__(self, tau: int, window: int, warmup_rounds: int = 0) -> None:
        self.tau = tau
        self.window = window
        self.warmup_rounds = warmup_rounds
        self.minimum = INITIAL_MINIMUM
        self.minimum_round = 0

    def observe(self, round_number: int, consistency_rate: float) -> SyncDecision:
        """Record round ``round_number``'s C; lower tau when bifurcation is declared past the warm-up."""
        tau = self.tau
        new_minimum = consistency_rate < self.minimum
        if new_minimum:
            self.minimum, self.minimum_round = consistency_rate, round_number
        minimum = self.minimum
        bifurcation = not new_minimum and round_number - self.minimum_round >= self.window
        if bifurcation and tau > 1 and round_number > self.warmup_rounds:
            self.tau = -(-tau // SHRINK_FACTOR)  # ceil(tau / 2)
            self.window *= SHRINK_FACTOR
            self.minimum, self.minimum_round = INITIAL_MINIMUM, round_number
        return SyncDecision(round_number, consistency_rate, tau, self.tau, minimum, new_minimum, bifurcation)
