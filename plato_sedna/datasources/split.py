"""The held-out test part of a dataset: seeded, stratified, the same in every process."""

from __future__ import annotations

import random
from collections import defaultdict

from plato_sedna.datasources.samples import Samples
from plato_sedna.errors import ResourceError


def held_out_counts(class_sizes: dict[int, int], fraction: float) -> dict[int, int]:
    """How many samples of each class to hold out: ``round(n * fraction)`` in all (at least 1),
    shared out in proportion to class sizes, remainders to the largest fractional parts."""
    total = sum(class_sizes.values())
    wanted = min(total, max(1, round(total * fraction)))
    exact = {target: size * wanted / total for target, size in class_sizes.items()}
    counts = {target: int(share) for target, share in exact.items()}
    by_remainder = sorted(
        exact, key=lambda target: (counts[target] - exact[target], target)
    )
    for target in by_remainder[: wanted - sum(counts.values())]:
        counts[target] += 1
    return counts


def split_held_out(
    samples: Samples, fraction: float, seed: int
) -> tuple[Samples, Samples]:
    """``(train, test)``: each class's samples shuffled with ``seed``, a ``fraction`` of each held out.

    Both keep the samples' original order, so every process given the same index,
    fraction and seed gets the same split.

    Raises
    ------
    ResourceError
        When ``fraction`` is not between 0 and 1.
    """
    if not 0 < fraction < 1:
        raise ResourceError(f"data.test_split = {fraction} must be between 0 and 1")
    by_class: dict[int, list[int]] = defaultdict(list)
    for position, target in enumerate(samples.targets):
        by_class[target].append(position)
    counts = held_out_counts(
        {target: len(positions) for target, positions in by_class.items()}, fraction
    )
    rng = random.Random(seed)
    held_out: list[int] = []
    for target in sorted(by_class):
        positions = by_class[target]
        rng.shuffle(positions)
        held_out += positions[: counts[target]]
    test_positions = sorted(held_out)
    chosen = set(test_positions)
    train_positions = [p for p in range(len(samples)) if p not in chosen]
    return samples.subset(train_positions), samples.subset(test_positions)
