"""The one file of a kind at the top of a dataset folder (an index, a data YAML)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from plato_sedna.errors import ResourceError


def single_file(
    folder: Path, suffixes: Iterable[str], where: str, what: str, fix: str
) -> Path:
    """The only file in ``folder`` (not below) whose suffix is one of ``suffixes``.

    Raises
    ------
    ResourceError
        When there is none or several: ``where: the folder ... needs exactly one what ...; fix``.
    """
    suffixes = tuple(suffixes)
    found = sorted(p for p in folder.iterdir() if p.suffix in suffixes and p.is_file())
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise ResourceError(
            f"{where}: the folder {folder} needs exactly one {what} at its top level "
            f"(found: {names}); {fix}"
        )
    return found[0]
