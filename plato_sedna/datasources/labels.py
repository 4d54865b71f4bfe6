"""Labels as written in an index (integers or class names) turned into integer targets."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from plato_sedna.datasources.samples import Origin
from plato_sedna.errors import ResourceError

MAX_LISTED = 5


@dataclass(frozen=True)
class ClassHints:
    """What the dataset's settings say about its classes (each may be unknown)."""

    classes: tuple[str, ...] | None = None
    num_classes: int | None = None

    def declared(self) -> tuple[str, ...] | None:
        """The class names the hints fix, if any (``num_classes`` alone: ``"0"``, ``"1"``, ...)."""
        if self.classes is not None:
            return self.classes
        if self.num_classes is not None:
            return tuple(str(i) for i in range(self.num_classes))
        return None


def listed(items: Sequence[str], total: int) -> str:
    """The first few ``items``, with ``...`` when ``total`` is larger."""
    shown = "; ".join(items[:MAX_LISTED])
    return shown + ("; ..." if total > MAX_LISTED else "")


def code_labels(
    labels: Sequence[str | None],
    lines: Sequence[int],
    origin: Origin,
    hints: ClassHints,
) -> tuple[array, tuple[str, ...]]:
    """Integer targets for ``labels`` (None: no label), and the class names.

    Integer labels keep their value; names are numbered in sorted order, or by their
    place in ``hints.classes``. Without any label every target is 0.

    Raises
    ------
    ResourceError
        When only some lines have a label, a label is not an integer where one is
        needed, is negative or out of range, or is not one of ``hints.classes``;
        names the first such line and counts them all.
    """
    counts = Counter(labels)
    if set(counts) == {None}:
        return array("l", [0]) * len(labels), hints.declared() or ("0",)
    problem = _Problems(labels, lines, origin, counts)
    if None in counts:
        problem.raise_for(
            [None], "while other lines have one", "label every line, or none"
        )
    classes = hints.declared() or _classes_from_labels(counts, problem)
    index_of = {name: i for i, name in enumerate(classes)}
    value_of = {label: _class_index(label, index_of, len(classes)) for label in counts}
    bad = [label for label, value in value_of.items() if value is None]
    if bad:
        _raise_bad_classes(bad, classes, hints, problem)
    return array("l", map(value_of.__getitem__, labels)), classes


def _class_index(label: str, index_of: dict[str, int], count: int) -> int | None:
    value = index_of.get(label)
    if value is None and _is_int(label) and 0 <= int(label) < count:
        value = int(label)
    return value


def _classes_from_labels(counts: Counter, problem: _Problems) -> tuple[str, ...]:
    labels = list(counts)
    numeric = [label for label in labels if _is_int(label)]
    if not numeric:
        return tuple(sorted(labels))
    if len(numeric) < len(labels):
        problem.raise_for(
            [label for label in labels if not _is_int(label)],
            "is not an integer, while other labels are",
            "use integers (0, 1, ...) or class names throughout, or list the classes "
            "in plato.sedna.io/classes",
        )
    negative = [label for label in numeric if int(label) < 0]
    if negative:
        problem.raise_for(negative, "is negative", "number classes from 0")
    return tuple(str(i) for i in range(max(int(label) for label in numeric) + 1))


def _raise_bad_classes(
    bad: list[str], classes: tuple[str, ...], hints: ClassHints, problem: _Problems
) -> None:
    if hints.classes is None and any(not _is_int(label) for label in bad):
        problem.raise_for(
            [label for label in bad if not _is_int(label)],
            "is not an integer",
            f"with {len(classes)} classes (num_classes) labels are 0..{len(classes) - 1}; "
            "give names in plato.sedna.io/classes to use class names",
        )
    shown = ", ".join(classes[:20]) + (", ..." if len(classes) > 20 else "")
    problem.raise_for(
        bad,
        f"is not one of the {len(classes)} classes ({shown})",
        "fix the label, or the dataset's classes / num_classes",
    )


class _Problems:
    """Builds label errors: the first offending line, and how many lines share the problem."""

    def __init__(self, labels, lines, origin: Origin, counts: Counter) -> None:
        self.labels, self.lines, self.origin, self.counts = (
            labels,
            lines,
            origin,
            counts,
        )

    def raise_for(self, bad_labels: list[str | None], problem: str, fix: str) -> None:
        wanted = set(bad_labels)
        first = next(i for i, label in enumerate(self.labels) if label in wanted)
        total = sum(self.counts[label] for label in wanted)
        subject = (
            "no label"
            if self.labels[first] is None
            else f"label {self.labels[first]!r}"
        )
        raise ResourceError(
            f"{self.origin.where(self.lines[first])}: {subject} {problem} "
            f"({total} line(s) alike); {fix}"
        )


def _is_int(label: str | None) -> bool:
    return label is not None and label.lstrip("-").isdigit()
