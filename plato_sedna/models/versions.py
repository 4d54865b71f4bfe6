"""Published versions beside MODEL_URL: ``round-0003/`` folders, a ``latest`` pointer, pruning."""

from __future__ import annotations

import re

VERSION_PATTERN = re.compile(r"round-(\d{4,})")
LATEST_NAME = "latest"  # a small text object holding the newest version's folder name


def version_name(round_number: int) -> str:
    """``round-0003`` for round 3."""
    return f"round-{round_number:04d}"


def versions_to_prune(names: list[str], keep: int) -> list[str]:
    """The version folders among ``names`` beyond the ``keep`` newest, oldest first."""
    versions = sorted(
        (int(match.group(1)), name) for name in names if (match := VERSION_PATTERN.fullmatch(name))
    )
    return [name for _, name in versions[: max(len(versions) - keep, 0)]]
