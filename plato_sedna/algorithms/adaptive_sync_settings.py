"""Adaptive synchronization's settings: the ``[algorithm]`` keys, read and checked once."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plato_sedna.errors import ConfigError

LOGGER = logging.getLogger(__name__)

DEFAULT_ALPHA = 0.9
DEFAULT_WINDOW = 5
DEFAULT_WARMUP_ROUNDS = 0
WINDOW_KEYS = ("bifurcation_window", "window")


@dataclass(frozen=True)
class AdaptiveSyncSettings:
    """How often trainers synchronize at first, and when to make them synchronize more often.

    initial_sync_frequency : int
        tau at the start: local epochs each trainer runs per round (at least 1).
    moving_average_alpha : float (default: 0.9)
        Weight of the past in the moving averages of the trainers' positive and
        negative changes, in [0, 1); 0 keeps only the current round.
    window : int (default: 5)
        ``bifurcation_window`` (or ``window``) in ``[algorithm]``: rounds without a new minimum of the consistency rate after which
        gradient bifurcation is declared; doubled each time tau is lowered.
    warmup_rounds : int (default: 0)
        Rounds in which tau is never lowered (bifurcation is still tracked).
    """

    initial_sync_frequency: int
    moving_average_alpha: float = DEFAULT_ALPHA
    window: int = DEFAULT_WINDOW
    warmup_rounds: int = DEFAULT_WARMUP_ROUNDS

    def __post_init__(self) -> None:
        if not 0 <= self.moving_average_alpha < 1:
            raise ConfigError(
                f"algorithm.moving_average_alpha = {self.moving_average_alpha} is outside [0, 1); "
                "set a weight of the past such as 0.9 (0 keeps only the current round) in [algorithm] "
                "or the pod env moving_average_alpha"
            )

    def describe(self) -> str:
        return (
            f"tau {self.initial_sync_frequency} local epoch(s) at first, alpha {self.moving_average_alpha:g}, "
            f"bifurcation window {self.window} round(s), warm-up {self.warmup_rounds} round(s)"
        )

    @classmethod
    def from_tables(cls, algorithm: Mapping[str, Any], trainer_epochs: Any = None) -> AdaptiveSyncSettings:
        """From ``[algorithm]``; tau starts at ``trainer.epochs`` when ``initial_sync_frequency`` is absent."""
        initial = algorithm.get("initial_sync_frequency")
        if initial is None:
            initial = trainer_epochs if isinstance(trainer_epochs, int) and trainer_epochs >= 1 else 1
        return cls(
            initial_sync_frequency=_whole("initial_sync_frequency", initial, minimum=1, example=4),
            moving_average_alpha=_alpha(algorithm.get("moving_average_alpha", DEFAULT_ALPHA)),
            window=_whole(_window_key(algorithm), _window(algorithm), minimum=1, example=DEFAULT_WINDOW),
            warmup_rounds=_whole(
                "warmup_rounds", algorithm.get("warmup_rounds", DEFAULT_WARMUP_ROUNDS), minimum=0, example=10
            ),
        )

    @classmethod
    def from_config(cls) -> AdaptiveSyncSettings:
        """From the running Plato config."""
        from plato_sedna import runtime_config

        keys = ("initial_sync_frequency", "moving_average_alpha", "warmup_rounds", *WINDOW_KEYS)
        algorithm = {key: runtime_config.setting("algorithm", key) for key in keys}
        present = {key: value for key, value in algorithm.items() if value is not None}
        return cls.from_tables(present, runtime_config.setting("trainer", "epochs"))


def _window_key(algorithm: Mapping[str, Any]) -> str:
    return next((key for key in WINDOW_KEYS if key in algorithm), WINDOW_KEYS[0])


def _window(algorithm: Mapping[str, Any]) -> Any:
    """``bifurcation_window`` (the pod env's name, so the env wins), else ``window``."""
    if "bifurcation_window" in algorithm and "window" in algorithm:
        if algorithm["window"] != algorithm["bifurcation_window"]:
            LOGGER.warning(
                "algorithm.window = %r ignored: algorithm.bifurcation_window = %r (the same setting) wins",
                algorithm["window"],
                algorithm["bifurcation_window"],
            )
        return algorithm["bifurcation_window"]
    return algorithm.get(_window_key(algorithm), DEFAULT_WINDOW)


def _whole(key: str, value: Any, minimum: int, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        bound = "a positive whole number" if minimum == 1 else f"a whole number >= {minimum}"
        raise ConfigError(f"algorithm.{key} = {value!r} is not {bound}; set e.g. {key} = {example}")
    return value


def _alpha(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(
            f"algorithm.moving_average_alpha = {value!r} is not a number; set a weight in [0, 1) such as 0.9"
        )
    return float(value)
