"""Adaptive parameter freezing's settings from ``[algorithm]``, read and checked once."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plato_sedna.errors import ConfigError

LOGGER = logging.getLogger(__name__)

KEYS = ("moving_average_alpha", "stability_threshold", "tight_threshold", "check_interval")


@dataclass(frozen=True)
class FreezingSettings:
    """How stability is measured and when a parameter freezes (defaults: the APF authors' code).

    moving_average_alpha : float (default: 0.95)
        The EMA weight of the past, in [0, 1): ``E = alpha * E + (1 - alpha) * delta``.
    stability_threshold : float (default: 0.1)
        A scalar is stable when ``|E| / A`` is below it; in (0, 1).
    tight_threshold : float (default: 0.8)
        When more than this fraction of the parameters is frozen, the stability
        threshold is halved; in (0, 1].
    check_interval : int (default: 1)
        Rounds between stability checks; freezing lengths count checks.
    """

    moving_average_alpha: float = 0.95
    stability_threshold: float = 0.1
    tight_threshold: float = 0.8
    check_interval: int = 1

    def __post_init__(self) -> None:
        alpha, threshold, tight = self.moving_average_alpha, self.stability_threshold, self.tight_threshold
        if not 0 <= alpha < 1:
            raise ConfigError(
                f"algorithm.moving_average_alpha = {alpha!r} is outside [0, 1); set the EMA weight of the "
                "past to e.g. 0.95 (env moving_average_alpha)"
            )
        if not 0 < threshold < 1:
            raise ConfigError(
                f"algorithm.stability_threshold = {threshold!r} is outside (0, 1); set e.g. 0.1 "
                "(env stability_threshold): a parameter freezes when |EMA of deltas| / EMA of |deltas| is below it"
            )
        if not 0 < tight <= 1:
            raise ConfigError(
                f"algorithm.tight_threshold = {tight!r} is outside (0, 1]; set the frozen fraction above "
                "which the stability threshold is halved, e.g. 0.8 (env tight_threshold)"
            )
        if self.check_interval < 1:
            raise ConfigError(
                f"algorithm.check_interval = {self.check_interval!r} is not a positive number of rounds; set e.g. 1"
            )

    def describe(self) -> str:
        return (
            f"EMA alpha {self.moving_average_alpha:g}, stability threshold {self.stability_threshold:g}, "
            f"halved above {self.tight_threshold:.0%} frozen, a check every {self.check_interval} round(s)"
        )

    @classmethod
    def from_table(cls, algorithm: Mapping[str, Any]) -> FreezingSettings:
        """From ``[algorithm]``: absent keys take the defaults."""
        values: dict[str, Any] = {}
        for key in KEYS:
            value = algorithm.get(key)
            if value is not None:
                values[key] = _check_interval(value) if key == "check_interval" else _number(key, value)
        settings = cls(**values)
        alpha = settings.moving_average_alpha
        if settings.stability_threshold <= (1 - alpha) / (1 + alpha):
            LOGGER.warning(
                "algorithm.stability_threshold = %g is not above (1 - alpha) / (1 + alpha) = %.3g "
                "(moving_average_alpha = %g): not even a scalar whose update flips sign every round "
                "counts as stable, so almost nothing will freeze; raise the threshold",
                settings.stability_threshold,
                (1 - alpha) / (1 + alpha),
                alpha,
            )
        return settings

    @classmethod
    def from_config(cls) -> FreezingSettings:
        """From the running Plato config."""
        from plato_sedna import runtime_config

        return cls.from_table({key: runtime_config.setting("algorithm", key) for key in KEYS})


def _number(key: str, value: Any) -> float:
    try:
        number = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise ConfigError(f"algorithm.{key} = {value!r} is not a number; set e.g. {getattr(FreezingSettings, key)}")
    return number


def _check_interval(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"algorithm.check_interval = {value!r} is not a whole number of rounds; set e.g. 1")
    return value
