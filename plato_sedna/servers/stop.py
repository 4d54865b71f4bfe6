"""When a job stops: rounds, target accuracy and loss plateau, combined with or/and.

Configured in ``[server.stop_condition]`` (``operator``, ``rounds``,
``target_accuracy``, ``delta_loss``, ``max_rounds``), falling back to Plato's own
``trainer.rounds`` and ``trainer.target_accuracy``; the pod env sets the same keys
(``rounds``, ``target_accuracy``, ``delta_loss``, ``stop_operator``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from plato_sedna.errors import ConfigError

OPERATORS = ("or", "and")
CRITERIA = ("rounds", "target_accuracy", "delta_loss")
SETTINGS = (*CRITERIA, "operator", "max_rounds")
AND_CAP_FACTOR = 10  # with "and", a job that never meets every criterion stops at 10x rounds


@dataclass(frozen=True)
class RoundState:
    """What the stop condition looks at after a round."""

    round: int
    accuracy: float | None
    losses: Sequence[float]


@dataclass(frozen=True)
class StopCondition:
    """Criteria combined by ``operator``, and a round cap that always applies."""

    criteria: Mapping[str, float]
    operator: str
    max_rounds: int

    def __post_init__(self) -> None:
        if self.operator not in OPERATORS:
            raise ConfigError(
                f"server.stop_condition.operator = {self.operator!r} is not one of {', '.join(OPERATORS)}"
            )
        unknown = sorted(set(self.criteria) - set(CRITERIA))
        if unknown:
            raise ConfigError(
                f"server.stop_condition has unknown criteria {unknown}; use {', '.join(CRITERIA)}"
            )
        if not self.criteria:
            raise ConfigError("server.stop_condition needs at least one of " + ", ".join(CRITERIA))

    def met(self, name: str, state: RoundState) -> bool:
        threshold = self.criteria[name]
        if name == "rounds":
            return state.round >= threshold
        if name == "target_accuracy":
            return state.accuracy is not None and state.accuracy >= threshold
        losses = state.losses
        return len(losses) >= 2 and abs(losses[-1] - losses[-2]) < threshold

    def reason(self, state: RoundState) -> str | None:
        """Why the job stops after this round, or None to go on."""
        met = [name for name in self.criteria if self.met(name, state)]
        if self.operator == "or" and met:
            return met[0]
        if self.operator == "and" and len(met) == len(self.criteria):
            return " and ".join(met)
        if state.round >= self.max_rounds:
            return "max_rounds"
        return None

    def describe(self) -> str:
        words = {"rounds": "round >= {}", "target_accuracy": "accuracy >= {}", "delta_loss": "|loss change| < {}"}
        parts = f" {self.operator} ".join(words[name].format(f"{value:g}") for name, value in self.criteria.items())
        return f"{parts} (at most {self.max_rounds} rounds)"


def _number(key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"server.stop_condition.{key} = {value!r} must be a number")
    return float(value)


def stop_condition_from(table: Mapping | None, rounds: int | None, target_accuracy: float | None) -> StopCondition:
    """Build the job's stop condition from ``[server.stop_condition]`` and the trainer keys."""
    table = dict(table or {})
    unknown = sorted(set(table) - set(SETTINGS))
    if unknown:
        raise ConfigError(
            f"server.stop_condition has unknown keys {unknown}; use {', '.join(SETTINGS)}"
        )
    operator = str(table.pop("operator", "or"))
    max_rounds = table.pop("max_rounds", None)
    if rounds is not None:
        table.setdefault("rounds", rounds)
    if target_accuracy:
        table.setdefault("target_accuracy", target_accuracy)
    criteria = {name: _number(name, table[name]) for name in CRITERIA if name in table}
    if max_rounds is None:
        planned = int(criteria.get("rounds", rounds or 0)) or 100
        max_rounds = planned if operator == "or" else planned * AND_CAP_FACTOR
    return StopCondition(criteria, operator, int(_number("max_rounds", max_rounds)))
