"""Which column of a csv header (or jsonl record) holds the path, the label or the text."""

from __future__ import annotations

from collections.abc import Sequence

from plato_sedna.datasources.samples import Origin
from plato_sedna.errors import ResourceError

PATH_COLUMNS = ("path", "image", "file", "filename", "image_path", "x")
LABEL_COLUMNS = ("label", "class", "target", "y", "labels")
TEXT_COLUMNS = ("text", "sentence", "content", "review")


def find_column(
    header: Sequence[str], configured: str | None, usual: Sequence[str]
) -> str | None:
    """The configured column, else the first usual name in the header (any case)."""
    if configured:
        return configured if configured in header else None
    by_lower = {name.strip().lower(): name for name in header}
    return next((by_lower[name] for name in usual if name in by_lower), None)


def require_column(
    header: Sequence[str],
    configured: str | None,
    usual: Sequence[str],
    key: str,
    origin: Origin,
) -> str:
    """Like :func:`find_column`, but a missing column is an error naming the config key.

    Raises
    ------
    ResourceError
        When no such column is in the header.
    """
    found = find_column(header, configured, usual)
    if found is None:
        wanted = (
            f"column {configured!r}"
            if configured
            else f"column named one of {', '.join(usual)}"
        )
        raise ResourceError(
            f"{origin.where(1)}: the header ({', '.join(header)}) has no {wanted}; "
            f"set data.{key} to the right column"
        )
    return found


def optional_column(
    header: Sequence[str],
    configured: str | None,
    usual: Sequence[str],
    key: str,
    origin: Origin,
) -> str | None:
    """Like :func:`find_column`, but a configured column must be there.

    Raises
    ------
    ResourceError
        When the configured column is not in the header.
    """
    if configured:
        return require_column(header, configured, usual, key, origin)
    return find_column(header, None, usual)
