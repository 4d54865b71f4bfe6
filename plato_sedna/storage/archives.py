"""Archives a fetch unpacks, as Sedna's storage initializer does: zip and tar (any compression)."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

from plato_sedna.errors import ResourceError

ZIP_SUFFIXES = (".zip",)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def is_archive(name: str) -> bool:
    """Whether a file called ``name`` is unpacked when fetched."""
    lowered = name.lower()
    return lowered.endswith(ZIP_SUFFIXES + TAR_SUFFIXES)


def unpack(archive: Path, name: str, destination: Path, source: str) -> None:
    """Extract ``archive`` (originally called ``name``, which tells its kind) into ``destination``.

    Members that would land outside ``destination`` (absolute paths, ``..``, links
    out of it) are refused.

    Raises
    ------
    ResourceError
        When the archive is corrupt, unsafe, or not what its name says; names ``source``.
    """
    try:
        if name.lower().endswith(ZIP_SUFFIXES):
            _unpack_zip(archive, destination)
        else:
            with tarfile.open(archive) as tar:
                tar.extractall(destination, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
        raise ResourceError(
            f"cannot unpack {source}: {error}; check that it is a complete {_kind(name)} archive"
        ) from error


def _unpack_zip(archive: Path, destination: Path) -> None:
    root = destination.resolve()
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.namelist():
            target = (root / member).resolve()
            if not target.is_relative_to(root):
                raise zipfile.BadZipFile(f"member {member!r} would be written outside the folder")
        zipped.extractall(destination)


def _kind(name: str) -> str:
    return "zip" if name.lower().endswith(ZIP_SUFFIXES) else "tar"
