"""A ``csv`` index: a header, then one sample per row; path and label columns configurable."""

from __future__ import annotations

import csv
from pathlib import Path

from plato_sedna.datasources.formats.columns import (
    LABEL_COLUMNS,
    PATH_COLUMNS,
    optional_column,
    require_column,
)
from plato_sedna.datasources.index import (
    Listed,
    checked_samples,
    open_text,
    undecodable,
)
from plato_sedna.datasources.options import ReadOptions
from plato_sedna.datasources.samples import Origin, Samples
from plato_sedna.errors import ResourceError


def read_csv_index(path: Path, origin: Origin, options: ReadOptions) -> Samples:
    """The samples a csv index lists (``data.path_column``, ``data.label_column``).

    Without a label column the samples are unlabelled (every target 0).

    Raises
    ------
    ResourceError
        For a missing index or column, a row with the wrong number of fields, and
        everything :func:`checked_samples` refuses; each names the file and line.
    """
    found = Listed()
    with open_text(path, origin) as index:
        _read_rows(csv.reader(index), path, found, origin, options)
    return checked_samples(found, origin, options)


def _column_positions(
    header: list[str], origin: Origin, options: ReadOptions
) -> tuple[int, int | None]:
    path = require_column(
        header, options.path_column, PATH_COLUMNS, "path_column", origin
    )
    label = optional_column(
        header, options.label_column, LABEL_COLUMNS, "label_column", origin
    )
    return header.index(path), (header.index(label) if label is not None else None)


def _read_rows(
    rows, path: Path, found: Listed, origin: Origin, options: ReadOptions
) -> None:
    try:
        header = next(rows, None)
        if not header:
            raise ResourceError(
                f"{origin.where()} is empty; a csv index starts with a header"
            )
        path_at, label_at = _column_positions(header, origin, options)
        for row in rows:
            if not any(row):
                continue
            line = rows.line_num
            if len(row) != len(header):
                raise ResourceError(
                    f"{origin.where(line)}: {len(row)} field(s) where the header has "
                    f"{len(header)} ({', '.join(header)}); quote fields that hold commas"
                )
            label = row[label_at].strip() if label_at is not None else None
            found.entries.append(row[path_at].strip())
            found.labels.append(label or None)
            found.lines.append(line)
    except UnicodeDecodeError as error:
        raise undecodable(path, origin, error) from error
    except csv.Error as error:
        raise ResourceError(f"{origin.where(rows.line_num)}: {error}") from error
