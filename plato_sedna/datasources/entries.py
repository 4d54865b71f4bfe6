"""Index entries: relative (to the index's folder), absolute, or URLs; checked once, located on use."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from plato_sedna.datasources.samples import Origin
from plato_sedna.errors import ResourceError

_URL_MARK = "://"


def is_url(entry: str) -> bool:
    """Whether an entry is a URL (``s3://...``) rather than a path."""
    return _URL_MARK in entry


def escapes_root(entry: str) -> bool:
    """Whether a relative entry climbs out of its root (``../../etc/passwd``)."""
    if ".." not in entry:  # the cheap test first: a million lines pass here
        return False
    normal = posixpath.normpath(entry.replace("\\", "/"))
    return normal == ".." or normal.startswith("../")


def remote_entry_url(root: str, entry: str) -> str:
    """A relative entry of a remote index as a URL beside the index."""
    return root + posixpath.normpath(entry).lstrip("/")


def existing_files(entries: list[str], root: Path) -> set[str]:
    """The entries' spellings of the files in every folder they name, each folder listed once.

    A stat per line would cost seconds on a million lines; a listing per folder does not.
    """
    folders = {entry.rpartition("/")[0] for entry in entries}
    present: set[str] = set()
    for folder in folders:
        lead = f"{folder}/" if folder else ""
        present.update(map(lead.__add__, _file_names(os.path.join(root, folder))))
    return present


def _file_names(folder: str) -> list[str]:
    """The names in a folder (sub-folders too: telling them apart costs a third more; a
    folder listed as an image fails when it is read, naming its line)."""
    try:
        return os.listdir(folder or "/")
    except OSError:
        return []


class EntryLocator:
    """Turns an entry into a local file on first use; remote ones are fetched once per process.

    ``storage`` (anything with ``to_local_path(url, unpack=...)``) defaults to the
    worker's storage, looked up when first needed so the locator pickles into loader workers.
    """

    def __init__(
        self, origin: Origin, data_path_prefix: str | None = None, storage=None
    ) -> None:
        self.origin = origin
        self.prefix = data_path_prefix
        self.storage = storage
        self._fetched: dict[str, Path] = {}

    def local_path(self, entry: str, line: int = 0) -> Path:
        """The local file ``entry`` names.

        Raises
        ------
        ResourceError
            When a remote entry cannot be fetched; names the dataset, file and line.
        """
        root = self.origin.local_root
        if not is_url(entry) and (root is not None or entry.startswith("/")):
            return self._local(
                root or Path("/"), entry
            )  # absolute: a path on this node
        url = entry if is_url(entry) else remote_entry_url(self.origin.root, entry)
        path = self._fetched.get(url)
        if path is None:
            path = self._fetched[url] = self._fetch(url, line)
        return path

    def _local(self, root: Path, entry: str) -> Path:
        path = root / entry
        if self.prefix and entry.startswith("/") and not path.exists():
            return Path(self.prefix.rstrip("/") + entry)
        return path

    def _fetch(self, url: str, line: int) -> Path:
        storage = self.storage
        if storage is None:
            from plato_sedna.worker_storage import worker_storage

            storage = worker_storage()
        try:
            return storage.to_local_path(url, unpack=False)
        except ResourceError as error:
            raise ResourceError(f"{self.origin.where(line)}: {error}") from error
