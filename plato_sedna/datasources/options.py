"""How the format readers read a dataset: class hints, column names, what to do with missing files."""

from __future__ import annotations

from dataclasses import dataclass, field

from plato_sedna.datasources.labels import ClassHints


@dataclass(frozen=True)
class ReadOptions:
    """Settings every format reader gets.

    Attributes
    ----------
    dataset : str
        The dataset as errors name it (``Dataset namespace/name`` or its URL).
    hints : ClassHints
        Declared classes / number of classes, when the dataset's settings give them.
    skip_missing : bool
        Drop index entries whose file is missing (with a warning) instead of failing.
    data_path_prefix : str | None
        Sedna's ``DATA_PATH_PREFIX``: absolute entries missing as written are tried under it.
    path_column, label_column, text_column : str | None
        Column names of csv indexes and text tables (None: the usual names, see ``columns``).
    data_yaml : str | None
        The YOLO data YAML, relative to the dataset's folder (None: the folder's one ``*.yaml``).
    """

    dataset: str
    hints: ClassHints = field(default_factory=ClassHints)
    skip_missing: bool = False
    data_path_prefix: str | None = None
    path_column: str | None = None
    label_column: str | None = None
    text_column: str | None = None
    data_yaml: str | None = None
