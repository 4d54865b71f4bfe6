"""The held-out split: seeded, stratified, disjoint, and the same in every process."""

from __future__ import annotations

import subprocess
import sys
from array import array
from collections import Counter

import pytest

from plato_sedna.datasources.samples import Origin, Samples
from plato_sedna.datasources.split import held_out_counts, split_held_out
from plato_sedna.errors import ResourceError

SPLIT_IN_A_NEW_PROCESS = """
from array import array
from plato_sedna.datasources.samples import Origin, Samples
from plato_sedna.datasources.split import split_held_out
targets = [i * 7 % 3 for i in range(500)]
samples = Samples([str(i) for i in range(500)], array("l", targets), ("a", "b", "c"), array("l", range(500)), Origin("d", "f", "/"))
print(",".join(split_held_out(samples, 0.2, 11)[1].entries))
"""


def samples_of(targets: list[int]) -> Samples:
    count = len(targets)
    classes = tuple(str(i) for i in range(max(targets) + 1))
    return Samples(
        [str(i) for i in range(count)],
        array("l", targets),
        classes,
        array("l", range(count)),
        Origin("d", "f", "/"),
    )


def test_each_class_keeps_its_share() -> None:
    targets = [0] * 70 + [1] * 20 + [2] * 10
    train, test = split_held_out(samples_of(targets), 0.2, seed=3)

    assert Counter(test.targets) == {0: 14, 1: 4, 2: 2}
    assert Counter(train.targets) == {0: 56, 1: 16, 2: 8}
    assert not set(train.entries) & set(test.entries)
    assert list(test.entries) == sorted(test.entries, key=int)  # index order kept
    assert train.classes == test.classes == ("0", "1", "2")


def test_the_total_is_rounded_once_and_shared_by_largest_remainder() -> None:
    assert held_out_counts({0: 575, 1: 144}, 0.2) == {0: 115, 1: 29}
    assert (
        sum(held_out_counts({i: 72 for i in range(10)} | {9: 71}, 0.2).values()) == 144
    )
    assert held_out_counts({0: 3, 1: 1}, 0.2) == {0: 1, 1: 0}


def test_seeded_and_the_same_in_another_process() -> None:
    targets = [i * 7 % 3 for i in range(500)]
    samples = samples_of(targets)
    assert split_held_out(samples, 0.2, 11) == split_held_out(samples, 0.2, 11)
    assert (
        split_held_out(samples, 0.2, 11)[1].entries
        != split_held_out(samples, 0.2, 12)[1].entries
    )

    other = subprocess.run(
        [sys.executable, "-c", SPLIT_IN_A_NEW_PROCESS],
        capture_output=True,
        text=True,
        check=True,
    )
    assert other.stdout.strip().split(",") == list(
        split_held_out(samples, 0.2, 11)[1].entries
    )


def test_fraction_must_be_between_0_and_1() -> None:
    with pytest.raises(
        ResourceError, match="data.test_split = 1.0 must be between 0 and 1"
    ):
        split_held_out(samples_of([0, 1]), 1.0, 1)
