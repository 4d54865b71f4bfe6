"""The aggregator's view of parameter stability (APF): EMAs, freezing lengths, and the mask they give.

For each scalar of the global model, at each check K, ``delta`` is its change
since check K-1. Only active (unfrozen) scalars update their state:

- ``E = alpha * E + (1 - alpha) * delta`` and ``A = alpha * A + (1 - alpha) * |delta|``;
- the scalar is stable when ``|E| / A < threshold`` (an ``A`` of 0: it never moved, stable);
- its freezing length ``L`` grows by one when stable and halves otherwise (AIMD);
- it is frozen for the next ``L`` checks: active again at check ``K + L + 1``.

A scalar is active in the rounds after check K iff its wake-up check is at most
K + 1. When more than ``tight_threshold`` of all scalars are frozen, the
threshold is halved. The state lives on the aggregator only, so every trainer
gets the same mask, whichever rounds it missed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch

from plato_sedna.algorithms.adaptive_freezing_settings import FreezingSettings

LOGGER = logging.getLogger(__name__)

Mask = dict[str, torch.Tensor]  # parameter name -> bool tensor of its shape, True = active (sent)


class StabilityTracker:
    """Per-scalar stability of the global parameters and the freezing mask it implies."""

    def __init__(self, settings: FreezingSettings, parameters: Mapping[str, torch.Tensor]) -> None:
        self.settings = settings
        self.threshold = settings.stability_threshold
        self.checks = 0
        self.last = {name: _float_copy(value) for name, value in parameters.items()}
        self.ema = {name: torch.zeros_like(value) for name, value in self.last.items()}
        self.ema_abs = {name: torch.zeros_like(value) for name, value in self.last.items()}
        self.length = {name: torch.zeros(value.shape, dtype=torch.int32) for name, value in self.last.items()}
        self.wake_up = {name: torch.zeros(value.shape, dtype=torch.int32) for name, value in self.last.items()}

    def mask(self) -> Mask:
        """Which scalars train and travel until the next check (active iff wake-up check <= next check)."""
        next_check = self.checks + 1
        return {name: wake_up <= next_check for name, wake_up in self.wake_up.items()}

    def frozen_fraction(self) -> float:
        """The share of scalars frozen until the next check."""
        total = sum(mask.numel() for mask in self.wake_up.values())
        active = sum(int(mask.sum()) for mask in self.mask().values())
        return 0.0 if total == 0 else 1.0 - active / total

    def is_check_round(self, round_number: int) -> bool:
        return round_number % self.settings.check_interval == 0

    def check(self, parameters: Mapping[str, torch.Tensor]) -> None:
        """Take the global parameters at a check: update the active scalars' state and the mask."""
        active = self.mask()
        self.checks += 1
        alpha = self.settings.moving_average_alpha
        for name, last in self.last.items():
            current = _float_copy(parameters[name])
            self._update(name, active[name], current - last, alpha)
            self.last[name] = current
        frozen = self.frozen_fraction()
        if frozen > self.settings.tight_threshold:
            self.threshold /= 2
            LOGGER.info(
                "%.1f%% of the parameters are frozen (above %.0f%%): stability threshold halved to %g",
                100 * frozen,
                100 * self.settings.tight_threshold,
                self.threshold,
            )

    def _update(self, name: str, active: torch.Tensor, delta: torch.Tensor, alpha: float) -> None:
        ema = torch.where(active, alpha * self.ema[name] + (1 - alpha) * delta, self.ema[name])
        ema_abs = torch.where(active, alpha * self.ema_abs[name] + (1 - alpha) * delta.abs(), self.ema_abs[name])
        moved = ema_abs > 0
        perturbation = torch.where(moved, ema.abs() / torch.where(moved, ema_abs, 1.0), 0.0)
        length = self.length[name]
        aimd = torch.where(perturbation < self.threshold, length + 1, length // 2)
        self.length[name] = torch.where(active, aimd, length)
        self.wake_up[name] = torch.where(active, self.checks + self.length[name] + 1, self.wake_up[name])
        self.ema[name], self.ema_abs[name] = ema, ema_abs


def _float_copy(value: torch.Tensor) -> torch.Tensor:
    return value.detach().to("cpu", torch.float32, copy=True)
