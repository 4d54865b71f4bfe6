"""Sedna's ``txt`` index: ``path label`` or ``path,label`` per line, the label optional, ``#`` comments."""

from __future__ import annotations

from pathlib import Path

from plato_sedna.datasources.index import (
    Listed,
    checked_samples,
    open_text,
    undecodable,
)
from plato_sedna.datasources.options import ReadOptions
from plato_sedna.datasources.samples import Origin, Samples
from plato_sedna.errors import ResourceError


def read_txt_index(path: Path, origin: Origin, options: ReadOptions) -> Samples:
    """The samples a txt index lists; relative paths are relative to ``origin.root``.

    Raises
    ------
    ResourceError
        For a missing or non-text index, a line with more than two fields, and
        everything :func:`checked_samples` refuses; each names the file and line.
    """
    found = Listed()
    add_entry, add_label, add_line = (
        found.entries.append,
        found.labels.append,
        found.lines.append,
    )
    with open_text(path, origin) as index:
        try:
            for number, line in enumerate(index, start=1):
                line = line.strip()
                if not line or line[0] == "#":
                    continue
                # split at commas when the line has one (paths may hold spaces), else at whitespace
                fields = (
                    [f.strip() for f in line.split(",")]
                    if "," in line
                    else line.split()
                )
                if (
                    len(fields) == 2 and fields[0] and fields[1]
                ):  # the common case, first
                    add_entry(fields[0])
                    add_label(fields[1])
                elif len(fields) <= 2 and fields[0]:
                    add_entry(fields[0])
                    add_label(None)
                else:
                    raise ResourceError(
                        f"{origin.where(number)}: {line!r} is not 'path label' or 'path,label'; "
                        "write one sample per line, its label optional"
                    )
                add_line(number)
        except UnicodeDecodeError as error:
            raise undecodable(path, origin, error) from error
    return checked_samples(found, origin, options)
