"""Readers for Sedna dataset indexes: ``relative/path label`` per line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from plato_sedna.errors import ResourceError

_SEPARATOR = re.compile(r"\s*,\s*|\s+")
_MAX_LISTED = 5


@dataclass(frozen=True)
class IndexedSamples:
    """Samples listed by an index: file paths with integer targets and class names."""

    paths: tuple[Path, ...]
    targets: tuple[int, ...]
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)


def _split_line(line: str) -> tuple[str, str | None]:
    fields = _SEPARATOR.split(line.strip(), maxsplit=1)
    return fields[0], (fields[1].strip() if len(fields) > 1 else None)


def _class_names(labels: list[str]) -> tuple[tuple[str, ...], dict[str, int]]:
    """Integer labels keep their value; names are numbered in sorted order."""
    if all(label.lstrip("-").isdigit() for label in labels):
        values = [int(label) for label in labels]
        if min(values, default=0) < 0:
            raise ValueError("negative class label")
        names = tuple(str(i) for i in range(max(values, default=-1) + 1))
        return names, {label: int(label) for label in set(labels)}
    names = tuple(sorted(set(labels)))
    return names, {name: i for i, name in enumerate(names)}


def read_txt_index(index_path: Path) -> IndexedSamples:
    """Read a Sedna ``txt`` index; paths are relative to the index's folder.

    Blank lines and lines starting with ``#`` are skipped; a line is
    ``path label`` or ``path,label``. Every listed file must exist.
    """
    if not index_path.is_file():
        raise ResourceError(
            f"dataset index {index_path} does not exist; check the Dataset's url "
            "(TRAIN_DATASET_URL / TEST_DATASET_URL) and that its volume is mounted"
        )
    root = index_path.parent
    paths: list[Path] = []
    labels: list[str] = []
    missing: list[str] = []
    unlabelled: list[int] = []
    lines = index_path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        relative, label = _split_line(line)
        if label is None:
            unlabelled.append(number)
            continue
        path = root / relative
        if not path.is_file():
            missing.append(f"line {number}: {relative}")
        paths.append(path)
        labels.append(label)
    _raise_for_problems(index_path, unlabelled, missing)
    if not paths:
        raise ResourceError(f"dataset index {index_path} lists no samples")
    try:
        classes, number_of = _class_names(labels)
    except ValueError as error:
        raise ResourceError(f"dataset index {index_path}: {error}") from error
    return IndexedSamples(tuple(paths), tuple(number_of[label] for label in labels), classes)


def _raise_for_problems(index_path: Path, unlabelled: list[int], missing: list[str]) -> None:
    if unlabelled:
        shown = ", ".join(str(n) for n in unlabelled[:_MAX_LISTED])
        raise ResourceError(
            f"dataset index {index_path}: {len(unlabelled)} line(s) without a label "
            f"(lines {shown}); each line must be 'relative/path label'"
        )
    if missing:
        shown = "; ".join(missing[:_MAX_LISTED])
        raise ResourceError(
            f"dataset index {index_path}: {len(missing)} listed file(s) do not exist "
            f"({shown}); paths are relative to the index's folder {index_path.parent}"
        )
