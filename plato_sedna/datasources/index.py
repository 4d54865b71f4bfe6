"""What an index lists, checked in bulk: entries inside the root, files present, labels coded.

The txt and csv readers collect ``entries``, ``labels`` and ``lines`` in a tight loop;
each check here is then one pass over a list, so a million lines stay fast.
"""

from __future__ import annotations

import logging
import os
from array import array
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from plato_sedna.datasources.entries import escapes_root, existing_files
from plato_sedna.datasources.labels import code_labels, listed
from plato_sedna.datasources.options import ReadOptions
from plato_sedna.datasources.samples import Origin, Samples
from plato_sedna.errors import ResourceError
from plato_sedna.storage import SUPPORTED_SCHEMES, display_url

LOGGER = logging.getLogger(__name__)


@dataclass
class Listed:
    """An index as read: entries as written, their labels (None: none) and line numbers."""

    entries: list[str] = field(default_factory=list)
    labels: list[str | None] = field(default_factory=list)
    lines: array = field(default_factory=lambda: array("l"))


def checked_samples(listed_: Listed, origin: Origin, options: ReadOptions) -> Samples:
    """The samples an index lists.

    Relative entries must stay under the root; local files must exist; URL entries
    are fetched on first use, so they are not checked here.

    Raises
    ------
    ResourceError
        For an entry that escapes the root or has an unknown scheme, missing files
        (all counted, unless ``skip_missing``), an empty index, or wrong labels.
    """
    entries = listed_.entries
    _check_no_nul(listed_, origin)
    urls = [i for i, entry in enumerate(entries) if "://" in entry]
    for i in urls:
        _check_scheme(entries[i], origin.where(listed_.lines[i]))
    url_set = set(urls)
    for i in (
        i for i, entry in enumerate(entries) if ".." in entry and i not in url_set
    ):
        if not entries[i].startswith("/") and escapes_root(entries[i]):
            raise ResourceError(
                f"{origin.where(listed_.lines[i])}: {entries[i]!r} points outside the dataset's "
                f"folder {origin.root}; entries may only name files under it (or absolute paths)"
            )
    root = origin.local_root
    if root is not None:
        missing = _missing(entries, url_set, root, options.data_path_prefix)
        if missing and origin.remote_root:
            origin, missing = _fetched_from_remote(entries, missing, origin)
        if missing:
            listed_ = _without_missing(listed_, missing, origin, options)
    if not listed_.entries:
        raise ResourceError(f"{origin.where()} lists no samples; the dataset is empty")
    targets, classes = code_labels(listed_.labels, listed_.lines, origin, options.hints)
    return Samples(listed_.entries, targets, classes, listed_.lines, origin)


def _fetched_from_remote(
    entries: list[str], missing: list[int], origin: Origin
) -> tuple[Origin, list[int]]:
    """The origin with relative entries resolved against ``origin.remote_root`` (when some
    are not beside the local copy of the index), and the missing entries that still are
    (absolute ones)."""
    absolute = [i for i in missing if entries[i].startswith("/")]
    if len(absolute) == len(missing):
        return origin, missing
    LOGGER.info(
        "%s: %d listed file(s) are not beside this copy of the index (Sedna's storage "
        "initializer downloads the index alone); relative entries are fetched from %s",
        origin.where(),
        len(missing) - len(absolute),
        display_url(origin.remote_root),
    )
    return replace(origin, root=origin.remote_root, remote_root=None), absolute


def _check_no_nul(listed_: Listed, origin: Origin) -> None:
    """A NUL byte cannot be in a path (a binary file read as an index, or a corrupt one)."""
    if not any("\x00" in entry for entry in listed_.entries):
        return
    first = next(i for i, entry in enumerate(listed_.entries) if "\x00" in entry)
    raise ResourceError(
        f"{origin.where(listed_.lines[first])}: the entry holds a NUL byte, which no file path "
        "can; the index is corrupt or not a text index (write one 'path label' per line)"
    )


def _check_scheme(entry: str, where: str) -> None:
    scheme = entry.partition("://")[0].lower()
    if scheme not in SUPPORTED_SCHEMES:
        raise ResourceError(
            f"{where}: {entry!r} has the scheme {scheme}://, which cannot be read; use a "
            f"relative or absolute path, or one of {', '.join(SUPPORTED_SCHEMES)}"
        )


def _missing(
    entries: list[str], urls: set[int], root: Path, prefix: str | None
) -> list[int]:
    """Positions of local entries whose file does not exist."""
    present = existing_files(entries, root)
    unseen = [
        i for i, entry in enumerate(entries) if entry not in present and i not in urls
    ]
    # entries the folder listings did not match exactly (./a, a//b, under the prefix) get a stat
    return [i for i in unseen if not _is_file(entries[i], root, prefix)]


def _is_file(entry: str, root: Path, prefix: str | None) -> bool:
    path = os.path.join(root, entry)
    if os.path.isfile(path):
        return True
    return (
        bool(prefix)
        and entry.startswith("/")
        and os.path.isfile(prefix.rstrip("/") + entry)
    )


def _without_missing(
    listed_: Listed, missing: list[int], origin: Origin, options: ReadOptions
) -> Listed:
    shown = [f"line {listed_.lines[i]}: {listed_.entries[i]}" for i in missing[:5]]
    summary = (
        f"{origin.where()}: {len(missing)} listed file(s) do not exist "
        f"({listed(shown, len(missing))}); relative paths are relative to {origin.root}"
    )
    if not options.skip_missing:
        raise ResourceError(
            f"{summary}; fix the index, or set data.skip_missing = true"
        )
    LOGGER.warning("%s; skipped (data.skip_missing = true)", summary)
    gone = set(missing)
    kept = [i for i in range(len(listed_.entries)) if i not in gone]
    return Listed(
        [listed_.entries[i] for i in kept],
        [listed_.labels[i] for i in kept],
        array("l", (listed_.lines[i] for i in kept)),
    )


def open_text(path: Path, origin: Origin) -> TextIO:
    """The index opened as UTF-8 text (read it under :func:`undecodable` handling).

    Raises
    ------
    ResourceError
        When the index is missing or unreadable.
    """
    try:
        return path.open(encoding="utf-8", newline="")
    except FileNotFoundError as error:
        raise ResourceError(
            f"{origin.where()} does not exist; check the Dataset's url "
            "(TRAIN_DATASET_URL / TEST_DATASET_URL) and that its volume is mounted"
        ) from error
    except OSError as error:
        raise ResourceError(f"{origin.where()} cannot be read: {error}") from error


def undecodable(path: Path, origin: Origin, error: UnicodeDecodeError) -> ResourceError:
    """The error for an index that is not UTF-8, naming its first undecodable line."""
    number = _first_undecodable_line(path)
    return ResourceError(
        f"{origin.where(number)}: not UTF-8 text ({error.reason}); is the url an index file?"
    )


def _first_undecodable_line(path: Path) -> int:
    with path.open("rb") as index:
        for number, raw in enumerate(index, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0
