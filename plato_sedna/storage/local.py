"""Local paths: hostPaths under Sedna's DATA_PATH_PREFIX, and atomic publishing to a local file."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from plato_sedna.errors import ResourceError

PUBLISHED_FILE_MODE = 0o644  # mkstemp creates 0600; readers of a published file need more


def resolve_local(path_text: str, url: str, data_path_prefix: str | None) -> Path:
    """The existing local path ``path_text`` names, trying ``data_path_prefix`` + path second.

    Sedna mounts a Dataset's hostPath ``/data/1.txt`` at ``/home/data/data/1.txt`` and
    sets ``DATA_PATH_PREFIX=/home/data``; a path that is missing as given is looked
    up under the prefix.

    Raises
    ------
    ResourceError
        When neither exists; names ``url`` and every place tried.
    """
    candidates = [Path(path_text)]
    if data_path_prefix:
        candidates.append(Path(data_path_prefix.rstrip("/") + "/" + path_text.lstrip("/")))
    for candidate in candidates:
        if candidate.exists():
            return candidate.absolute()
    if len(candidates) == 1:
        raise ResourceError(f"{url} does not exist on this node; check the path")
    raise ResourceError(
        f"{url} does not exist on this node (neither {candidates[0]} nor {candidates[1]}); "
        "check the url, and for a hostPath that the node has it"
    )


def write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through ``write(file)``: a temp file beside it, fsync, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as temp_file:
            write(temp_file)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.chmod(temp_name, PUBLISHED_FILE_MODE)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def publish_local(source: Path, destination: Path) -> None:
    """Copy ``source`` to ``destination`` atomically."""
    with open(source, "rb") as source_file:
        write_atomically(destination, lambda file: shutil.copyfileobj(source_file, file, length=1024 * 1024))
