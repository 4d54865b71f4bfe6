"""What a dataset lists: entries with targets, and where each was listed (for error messages)."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Origin:
    """Where a dataset's entries come from.

    Attributes
    ----------
    dataset : str
        The dataset as a user names it: ``Dataset namespace/name`` or its URL.
    file : str
        The index (or folder, or data YAML) the entries were read from.
    root : str
        What relative entries resolve against: a local folder, or a remote URL ending in ``/``.
    remote_root : str | None
        A remote URL ending in ``/`` that relative entries missing under a local ``root``
        are fetched from (the folder of the remote url ``file`` is a copy of), if any.
    """

    dataset: str
    file: str
    root: str
    remote_root: str | None = None

    def where(self, line: int = 0) -> str:
        """``dataset: file`` or ``dataset: file, line N``, the start of every error message."""
        return (
            f"{self.dataset}: {self.file}, line {line}"
            if line
            else f"{self.dataset}: {self.file}"
        )

    @property
    def local_root(self) -> Path | None:
        """The root as a local folder, or None when it is a remote URL."""
        return None if "://" in self.root else Path(self.root)


@dataclass(frozen=True)
class Samples:
    """One entry per sample: a path or URL (or a text, for tables), its target and index line.

    ``lines[i]`` is 0 for entries not read from a line (image folders).
    """

    entries: Sequence[str]
    targets: Sequence[int]
    classes: tuple[str, ...]
    lines: Sequence[int]
    origin: Origin

    def __len__(self) -> int:
        return len(self.entries)

    def subset(self, positions: Sequence[int]) -> Samples:
        """The samples at ``positions``, in that order."""
        return Samples(
            [self.entries[i] for i in positions],
            array("l", (self.targets[i] for i in positions)),
            self.classes,
            array("l", (self.lines[i] for i in positions)),
            self.origin,
        )

    def emptied(self) -> Samples:
        """No samples, the same classes and origin."""
        return self.subset(())
