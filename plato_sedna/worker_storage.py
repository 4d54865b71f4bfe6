"""The storage layer as a running worker uses it: Sedna's S3 settings, a cache under Plato's base path."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

CACHE_FOLDER = "cache"


@cache
def worker_storage():
    """One Storage per process; its cache survives runs that share the base path."""
    from plato.config import Config

    from plato_sedna.context import SednaContext
    from plato_sedna.storage import Storage

    cache_dir = Path(Config.params["base_path"]) / CACHE_FOLDER
    return Storage.from_context(SednaContext.from_env(os.environ), cache_dir)
