"""The download cache: entries named by a URL's sha256, committed by rename, never half-written.

An entry for key ``K`` is a folder ``K/`` (a downloaded file keeps its own name inside
it; a prefix or unpacked archive is the folder itself) and a sidecar ``K.json`` that
records where it came from and its validators (ETag, size). The sidecar is written
last and removed first, so it marks a complete entry. Work in progress lives under
``.K.<purpose>.part`` names in the same folder and is removed by the next fetch of ``K``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

Manifest = dict[str, Any]
READ_ONLY_FILE_MODE = 0o444
READABLE_DIR_MODE = 0o755
WORK_PURPOSES = ("staging", "retired", "sidecar", "archive")


def cache_key(url: str, variant: str = "") -> str:
    """The sha256 hex digest naming ``url``'s entry (``variant`` tells other layouts apart)."""
    return hashlib.sha256(f"{url}{variant}".encode()).hexdigest()


class CacheEntry:
    """One key's entry, used while its lock is held (see :meth:`DownloadCache.entry`)."""

    def __init__(self, root: Path, key: str) -> None:
        self.root = root
        self.key = key
        self.data_dir = root / key
        self.sidecar = root / f"{key}.json"

    def manifest(self) -> Manifest | None:
        """The committed manifest, or None when there is no complete entry."""
        if not self.data_dir.is_dir():
            return None
        try:
            return json.loads(self.sidecar.read_text())
        except (OSError, ValueError):
            return None

    def payload(self, manifest: Manifest) -> Path:
        """The path a committed entry hands out: its file, or its folder."""
        name = manifest.get("file_name")
        return self.data_dir / name if name else self.data_dir

    def temp_path(self, purpose: str) -> Path:
        """The name for work in progress on ``purpose``, beside the entry (so renames are atomic).

        Names are fixed per key: the key's lock lets one fetch at a time use them.
        """
        return self.root / f".{self.key}.{purpose}.part"

    def staging_dir(self) -> Path:
        """A new empty folder to build the next version of the entry in."""
        staging = self.temp_path("staging")
        staging.mkdir()
        return staging

    def commit(self, staging: Path, manifest: Manifest) -> None:
        """Make ``staging`` the entry, with ``manifest`` as its sidecar."""
        mark_read_only(staging)
        self.sidecar.unlink(missing_ok=True)
        retired = None
        if self.data_dir.exists():
            retired = self.temp_path("retired")
            os.replace(self.data_dir, retired)
        os.replace(staging, self.data_dir)
        sidecar_temp = self.temp_path("sidecar")
        sidecar_temp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        os.replace(sidecar_temp, self.sidecar)
        if retired is not None:
            remove_tree(retired)

    def discard_leftovers(self) -> None:
        """Remove what an interrupted fetch of this key left: work in progress, unmarked folders."""
        for purpose in WORK_PURPOSES:
            leftover = self.temp_path(purpose)
            if leftover.exists() or leftover.is_symlink():
                logger.debug("removing %s left by an interrupted fetch", leftover.name)
                remove_tree(leftover)
        if self.data_dir.exists() and not self.sidecar.exists():
            remove_tree(self.data_dir)


class DownloadCache:
    """A folder of cache entries; each key is fetched by one thread or process at a time."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def entry(self, key: str) -> Iterator[CacheEntry]:
        """Lock ``key``'s entry (across threads and processes) and clean up leftovers."""
        lock_path = self.root / f"{key}.lock"
        with open(lock_path, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                entry = CacheEntry(self.root, key)
                entry.discard_leftovers()
                yield entry
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


def mark_read_only(root: Path) -> None:
    """Make the files under ``root`` read-only; folders stay writable so entries can be replaced."""
    os.chmod(root, READABLE_DIR_MODE)
    for folder, dir_names, file_names in os.walk(root):
        for name in dir_names:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, READABLE_DIR_MODE)
        for name in file_names:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, READ_ONLY_FILE_MODE)


def remove_tree(path: Path) -> None:
    """Delete a file or folder, even one holding folders without write permission."""

    def make_writable_and_retry(function, failed_path, _error) -> None:
        parent = os.path.dirname(failed_path)
        os.chmod(parent, os.stat(parent).st_mode | stat.S_IWUSR | stat.S_IXUSR)
        function(failed_path)

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, onexc=make_writable_and_retry)
    else:
        path.unlink(missing_ok=True)
