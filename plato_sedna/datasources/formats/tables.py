"""Text tables for NLP: ``csv`` with a header or ``jsonl``, one ``(text, label)`` sample per row."""

from __future__ import annotations

import csv
import json
from array import array
from collections.abc import Iterator
from pathlib import Path

from plato_sedna.datasources.formats.columns import (
    LABEL_COLUMNS,
    TEXT_COLUMNS,
    optional_column,
    require_column,
)
from plato_sedna.datasources.index import open_text, undecodable
from plato_sedna.datasources.labels import code_labels
from plato_sedna.datasources.options import ReadOptions
from plato_sedna.datasources.samples import Origin, Samples
from plato_sedna.errors import ResourceError

Row = tuple[int, dict]


def read_text_table(
    path: Path, origin: Origin, options: ReadOptions, kind: str
) -> Samples:
    """The rows of a ``csv`` or ``jsonl`` table (``data.text_column``, ``data.label_column``).

    Raises
    ------
    ResourceError
        For an unreadable table, a malformed row, a row without the text column,
        an empty table or wrong labels; each names the file and line.
    """
    texts: list[str] = []
    lines = array("l")
    labels: list[str | None] = []
    columns: tuple[str, str | None] | None = None
    with open_text(path, origin) as table:
        try:
            rows = list(_rows(table, origin, kind))
        except UnicodeDecodeError as error:
            raise undecodable(path, origin, error) from error
    for line, row in rows:
        if columns is None:
            columns = _columns(list(row), origin, options)
        text_column, label_column = columns
        text = row.get(text_column)
        if not isinstance(text, str):
            raise ResourceError(
                f"{origin.where(line)}: no text in column {text_column!r}; every row needs one"
            )
        label = row.get(label_column) if label_column else None
        texts.append(text)
        lines.append(line)
        labels.append(None if label in (None, "") else str(label).strip())
    if not texts:
        raise ResourceError(f"{origin.where()} has no rows; the dataset is empty")
    targets, classes = code_labels(labels, lines, origin, options.hints)
    return Samples(texts, targets, classes, lines, origin)


def _columns(
    names: list[str], origin: Origin, options: ReadOptions
) -> tuple[str, str | None]:
    text = require_column(
        names, options.text_column, TEXT_COLUMNS, "text_column", origin
    )
    return text, optional_column(
        names, options.label_column, LABEL_COLUMNS, "label_column", origin
    )


def _rows(table: Iterator[str], origin: Origin, kind: str) -> Iterator[Row]:
    line = 0
    try:
        if kind == "jsonl":
            for line, text in enumerate(table, start=1):
                if text.strip():
                    yield line, _record(text, origin, line)
            return
        rows = csv.DictReader(table)
        for row in rows:
            line = rows.line_num
            if None in row or None in row.values():
                raise ResourceError(
                    f"{origin.where(line)}: the row's fields do not match the header "
                    f"({', '.join(rows.fieldnames or ())}); quote fields that hold commas"
                )
            yield line, row
    except csv.Error as error:
        raise ResourceError(f"{origin.where(line + 1)}: {error}") from error


def _record(text: str, origin: Origin, line: int) -> dict:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise ResourceError(
            f"{origin.where(line)}: not a JSON object ({error.msg})"
        ) from error
    if not isinstance(record, dict):
        raise ResourceError(
            f"{origin.where(line)}: not a JSON object; write one object per line"
        )
    return record
