"""MistNet's settings: ``algorithm.cut_layer`` and ``algorithm.epsilon``, read and checked once."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plato_sedna.errors import ConfigError

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class MistNetSettings:
    """Where the model is cut, and the per-feature privacy budget of randomized response.

    cut_layer : str | int | None
        A layer name of the model, or its position among the model's layers; the
        front part runs up to and including it. For an ultralytics model, a module
        index, exclusive: the front runs the modules before it. None: not set (the split says which
        layers there are).
    epsilon : float | None (default: None)
        The paper's per-feature budget, ``ln(p / q)``: each bit is kept with
        ``p = e^epsilon / (1 + e^epsilon)``. None: binarise only, no noise. (Old
        Plato's ``epsilon`` was twice this: its 1/2/4 are this 0.5/1/2.)
    random_seed : int | None (default: None)
        Seeds the noise, for reproducible tests only: an aggregator that knows the
        seed can undo the noise.
    """

    cut_layer: str | int | None
    epsilon: float | None = None
    random_seed: int | None = None

    def __post_init__(self) -> None:
        if self.epsilon is not None and self.epsilon < 0:
            raise ConfigError(
                f"algorithm.epsilon = {self.epsilon} is negative; set a privacy budget >= 0 "
                "(e.g. 1.0), or leave epsilon out to binarise without noise"
            )

    @property
    def keep_probability(self) -> float:
        """p, the probability that randomized response keeps a bit (1.0 without epsilon)."""
        if self.epsilon is None:
            return 1.0
        return 1.0 / (1.0 + math.exp(-self.epsilon))

    def describe(self, cut: str | None = None) -> str:
        """The cut (``cut``: the split's own words for it) and the noise, for logs."""
        noise = "no noise" if self.epsilon is None else f"epsilon {self.epsilon:g} (p = {self.keep_probability:.3f})"
        return f"{cut or f'cut after layer {self.cut_layer!r}'}, {noise}"

    @classmethod
    def from_tables(cls, algorithm: Mapping[str, Any], model_parameters: Mapping[str, Any] | None = None):
        """From ``[algorithm]`` (and old Plato's ``parameters.model.cut_layer`` as a fallback)."""
        cut_layer = algorithm.get("cut_layer")
        if cut_layer is None and model_parameters:
            cut_layer = model_parameters.get("cut_layer")
        return cls(
            cut_layer=_cut_layer(cut_layer),
            epsilon=_epsilon(algorithm.get("epsilon")),
            random_seed=_seed(algorithm.get("random_seed")),
        )

    @classmethod
    def from_config(cls) -> MistNetSettings:
        """From the running Plato config."""
        from plato_sedna import runtime_config

        algorithm = {key: runtime_config.setting("algorithm", key) for key in ("cut_layer", "epsilon", "random_seed")}
        settings = cls.from_tables(algorithm, runtime_config.table("parameters", "model"))
        if settings.random_seed is not None:
            LOGGER.warning(
                "algorithm.random_seed = %d seeds MistNet's noise: fine for tests, but an aggregator "
                "that knows the seed can undo the noise; leave it out in real jobs",
                settings.random_seed,
            )
        return settings


def _cut_layer(value: Any) -> str | int | None:
    if value is None or isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfigError(f"algorithm.cut_layer = {value!r} is neither a layer name nor an index; set e.g. relu3 or 4")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value.strip() if isinstance(value, str) else value


def _epsilon(value: Any) -> float | None:
    if value is None:
        return None
    try:
        epsilon = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        epsilon = math.nan
    if math.isnan(epsilon):
        raise ConfigError(f"algorithm.epsilon = {value!r} is not a number; set e.g. 1.0, or leave it out")
    return epsilon


def _seed(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"algorithm.random_seed = {value!r} is not a whole number")
    return value
