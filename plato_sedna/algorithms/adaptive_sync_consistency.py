"""The consistency rate C of the trainers' updates: do they move each parameter the same way?

For every scalar j of the model's parameters, over the round's trainers k:
``Pos_j = EMA(sum_k max(delta_kj, 0))`` and ``Neg_j = EMA(sum_k min(delta_kj, 0))``;
``c_j = |Pos_j + Neg_j| / (Pos_j - Neg_j)`` (1 where nothing moved), and
``C = mean_j c_j``: 1 when all trainers agree in direction, near 0 when they cancel out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

Deltas = Mapping[str, torch.Tensor]


class ConsistencyRate:
    """Moving averages of the positive and negative sums, updated once per round over all updates."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.positive: torch.Tensor | None = None
        self.negative: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget the past rounds (after tau was lowered)."""
        self.positive = self.negative = None

    def update(self, deltas: Sequence[Deltas]) -> float:
        """Fold in one round's updates (each a name -> change mapping with the same names); return C."""
        if not deltas:
            raise ValueError("a round without updates has no consistency rate")
        stacked = torch.stack([_flatten(update, names=sorted(deltas[0])) for update in deltas])
        positive = stacked.clamp(min=0).sum(dim=0)
        negative = stacked.clamp(max=0).sum(dim=0)
        if self.positive is None or self.positive.shape != positive.shape:
            self.positive, self.negative = positive, negative  # the first value of an EMA is the value itself
        else:
            self.positive = self.alpha * self.positive + (1 - self.alpha) * positive
            self.negative = self.alpha * self.negative + (1 - self.alpha) * negative
        return rate(self.positive, self.negative)


def rate(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """C from the (averaged) positive and negative sums."""
    spread = positive - negative
    per_scalar = torch.where(spread > 0, (positive + negative).abs() / spread.clamp(min=torch.finfo(spread.dtype).tiny), 1.0)
    return float(per_scalar.mean())


def _flatten(update: Deltas, names: list[str]) -> torch.Tensor:
    if sorted(update) != names:
        raise ValueError(f"updates name different parameters: {sorted(set(update) ^ set(names))[:5]}")
    return torch.cat([update[name].detach().reshape(-1).to(torch.float64) for name in names])
