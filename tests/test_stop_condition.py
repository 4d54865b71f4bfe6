"""Stop conditions: each criterion, or/and, the round cap, and bad settings named at start."""

from __future__ import annotations

import pytest

from plato_sedna.errors import ConfigError
from plato_sedna.servers.stop import RoundState, stop_condition_from


def state(round_: int, accuracy: float | None = 0.5, losses: tuple[float, ...] = ()) -> RoundState:
    return RoundState(round=round_, accuracy=accuracy, losses=losses)


def test_plato_keys_alone_behave_like_plato() -> None:
    condition = stop_condition_from(None, rounds=5, target_accuracy=0.9)

    assert condition.reason(state(4, 0.8)) is None
    assert condition.reason(state(3, 0.91)) == "target_accuracy"
    assert condition.reason(state(5, 0.8)) == "rounds"
    assert condition.max_rounds == 5


def test_delta_loss_stops_on_a_plateau() -> None:
    condition = stop_condition_from({"delta_loss": 0.01}, rounds=50, target_accuracy=None)

    assert condition.reason(state(1, losses=(2.0,))) is None
    assert condition.reason(state(2, losses=(2.0, 1.5))) is None
    assert condition.reason(state(3, losses=(2.0, 1.5, 1.495))) == "delta_loss"


def test_and_needs_every_criterion_and_is_capped() -> None:
    condition = stop_condition_from({"operator": "and", "target_accuracy": 0.9}, rounds=3, target_accuracy=None)

    assert condition.reason(state(5, 0.85)) is None  # rounds met, accuracy not
    assert condition.reason(state(2, 0.95)) is None  # accuracy met, rounds not
    assert condition.reason(state(4, 0.95)) == "rounds and target_accuracy"
    assert condition.max_rounds == 30
    assert condition.reason(state(30, 0.1)) == "max_rounds"


def test_the_table_wins_over_the_trainer_keys() -> None:
    condition = stop_condition_from({"rounds": 2, "max_rounds": 4}, rounds=10, target_accuracy=None)

    assert condition.reason(state(2)) == "rounds"
    assert "round >= 2 (" in condition.describe() and "at most 4 rounds" in condition.describe()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"operator": "xor"}, "operator = 'xor' is not one of or, and"),
        ({"target_loss": 0.1}, "unknown keys ['target_loss']"),
        ({"delta_loss": "small"}, "delta_loss = 'small' must be a number"),
    ],
)
def test_bad_settings_are_named(table: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        stop_condition_from(table, rounds=5, target_accuracy=None)
