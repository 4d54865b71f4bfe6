"""Publishing the global model to ``MODEL_URL`` with ``metrics.json`` beside it.

Layout, for ``MODEL_URL = s3://bucket/models/net.pth`` (or a local path)::

    models/net.pth            the newest model     models/metrics.json   its metrics
    models/round-0003/net.pth, round-0003/metrics.json   one folder per published round
    models/latest             the newest round folder's name (a text object)

A ``MODEL_URL`` that names a folder (see :func:`is_folder_url`: it ends in ``/``, is
an existing local folder, or its last part has no suffix, as Sedna's ``url: /model``)
holds all of it: ``/model/model.<ext>``, ``/model/metrics.json``, ``/model/latest``,
``/model/round-NNNN/`` (and the aggregator's ``/model/.plato-sedna-resume/``), never
its parent, which on a node is the hostPath Sedna mounts.

Every file is first written under a local folder (the model stays there when
publishing fails), then put in place atomically: a temporary file renamed
(local), or a temporary key copied into place and deleted (s3). Versions come
first, ``latest`` last, so ``latest`` always names a complete folder. Settings,
in the ``[server.publish]`` table: ``every`` (publish every N rounds; the last
round always; default 1) and ``keep_versions`` (round folders kept, 0 for none;
default 5).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from plato_sedna.errors import ConfigError, PlatoSednaError, ResourceError
from plato_sedna.models import formats, versions
from plato_sedna.storage.local import write_atomically

LOGGER = logging.getLogger(__name__)

METRICS_FILENAME = "metrics.json"
DEFAULT_MODEL_FILENAME = "model.pth"
DEFAULT_MODEL_STEM = "model"
DEFAULT_EVERY = 1
DEFAULT_KEEP_VERSIONS = 5

__all__ = [
    "METRICS_FILENAME",
    "ModelPublisher",
    "PublishSettings",
    "is_folder_url",
    "model_folder",
    "model_path",
    "publish",
    "write_atomically",
]


def _local_path(model_url: str) -> Path | None:
    """The local path of a path or ``file://`` URL; None for a remote one."""
    if "://" in model_url and not model_url.startswith("file://"):
        return None
    return Path(model_url.removeprefix("file://"))


def is_folder_url(model_url: str) -> bool:
    """Whether ``model_url`` names a folder to publish into, not a model file.

    A folder: a url ending in ``/``; an existing local folder; or a url whose last part
    has no suffix (``/model``, ``s3://bucket/models/digits``), whether or not it exists
    yet. An existing local file is a file, suffix or not.
    """
    if model_url.endswith("/"):
        return True
    local = _local_path(model_url)
    if local is not None and local.exists():
        return local.is_dir()
    last = model_url.rstrip("/").rpartition("/")[2]
    return not PurePosixPath(last).suffix


def model_folder(model_url: str) -> str:
    """The folder (a path or URL, no trailing ``/``) that holds the model and what goes beside it."""
    trimmed = model_url.rstrip("/") or "/"
    if is_folder_url(model_url):
        return trimmed
    parent = trimmed.rpartition("/")[0]
    return parent or ("/" if trimmed.startswith("/") else ".")


def model_path(model_url: str, fmt: str | None = None) -> Path:
    """The local file a ``MODEL_URL`` names (a folder gets ``model.<ext>`` of ``fmt`` inside).

    Without ``fmt``, a folder's ``model.*`` file already there (else ``model.pth``).
    """
    local = _local_path(model_url)
    if local is None:
        raise ResourceError(f"MODEL_URL {model_url} is remote; it has no local path")
    if not is_folder_url(model_url):
        return local
    if fmt is not None:
        return local / formats.file_name(DEFAULT_MODEL_STEM, fmt)
    for suffix in dict.fromkeys(formats.SUFFIXES.values()):
        if (local / (DEFAULT_MODEL_STEM + suffix)).is_file():
            return local / (DEFAULT_MODEL_STEM + suffix)
    return local / DEFAULT_MODEL_FILENAME


def publish(model_url: str, state_dict: Mapping, metrics: Mapping) -> Path:
    """Write a state dict to the local ``model_url`` and ``metrics.json`` beside it (no versions)."""
    import torch

    destination = model_path(model_url)
    write_atomically(destination, lambda file: torch.save(dict(state_dict), file))
    encoded = json.dumps(metrics, indent=2, sort_keys=True).encode()
    write_atomically(destination.parent / METRICS_FILENAME, lambda file: file.write(encoded))
    return destination


@dataclass(frozen=True)
class PublishSettings:
    """How often and how many versions; from ``[server.publish]``.

    Attributes
    ----------
    every : int (default: 1)
        Publish after every N-th round; the job's last round is always published.
    keep_versions : int (default: 5)
        ``round-NNNN`` folders kept beside the model (0: none, and no ``latest``).
    """

    every: int = DEFAULT_EVERY
    keep_versions: int = DEFAULT_KEEP_VERSIONS

    def __post_init__(self) -> None:
        if not isinstance(self.every, int) or self.every < 1:
            raise ConfigError(
                f"[server.publish] every = {self.every!r} must be a whole number >= 1"
            )
        if not isinstance(self.keep_versions, int) or self.keep_versions < 0:
            raise ConfigError(
                f"[server.publish] keep_versions = {self.keep_versions!r} must be a whole number >= 0"
            )

    @classmethod
    def from_table(cls, table: Mapping[str, Any] | None) -> PublishSettings:
        table = dict(table or {})
        unknown = sorted(set(table) - {"every", "keep_versions"})
        if unknown:
            raise ConfigError(
                f"[server.publish] has unknown keys {unknown}; known: every, keep_versions"
            )
        return cls(**table)


@dataclass(frozen=True)
class Destination:
    """Where the model goes: a folder URL and the model's name in it ('' for a folder format)."""

    folder: str
    entry: str

    @classmethod
    def of(cls, model_url: str, fmt: str) -> Destination:
        trimmed = model_url.rstrip("/")
        if fmt == "huggingface":
            return cls(trimmed, "")
        if is_folder_url(model_url):
            return cls(model_folder(model_url), formats.file_name(DEFAULT_MODEL_STEM, fmt))
        folder, _, entry = trimmed.rpartition("/")
        return cls(folder, entry)

    def url(self, *parts: str) -> str:
        return "/".join((self.folder.rstrip("/"), *(part for part in parts if part)))


class ModelPublisher:
    """Publishes a model and its metrics to one URL, keeping versions and a local copy.

    Parameters
    ----------
    model_url : str
        Where the model goes (local path, ``file://`` or ``s3://``).
    storage : Storage
        The storage layer that writes there.
    local_dir : Path
        Where each published round is written first, and stays when publishing fails.
    fmt : str
        A format of :data:`formats.FORMATS`.
    settings : PublishSettings
    input_shape : tuple[int, ...] | None
        One sample's shape, for onnx.
    retry : Callable
        ``retry(attempt, what)`` runs a transfer with retries (the storage layer's by default).
    """

    def __init__(
        self,
        model_url: str,
        storage,
        local_dir: Path,
        fmt: str,
        settings: PublishSettings = PublishSettings(),
        input_shape: tuple[int, ...] | None = None,
        retry: Callable | None = None,
    ) -> None:
        self.model_url = model_url
        self.storage = storage
        self.local_dir = Path(local_dir).absolute()
        self.format = fmt
        self.settings = settings
        self.input_shape = input_shape
        self.destination = Destination.of(model_url, fmt)
        self._retry = retry or _retry_transient

    def due(self, round_number: int, final: bool) -> bool:
        return final or round_number % self.settings.every == 0

    def publish(
        self, model, metrics: Mapping[str, Any], round_number: int, *, final: bool = False
    ) -> str | None:
        """Publish ``model`` as round ``round_number``; the model's URL, or None when not due.

        Raises
        ------
        ResourceError
            When writing fails after retries; names the URL and the local copy.
        """
        if not self.due(round_number, final):
            return None
        version = versions.version_name(round_number)
        staged = self._stage(model, metrics, round_number, version)
        try:
            self._put_all(staged, version)
        except (PlatoSednaError, OSError) as error:
            raise ResourceError(
                f"publishing the round-{round_number} model to {self.model_url} failed: {error}. "
                f"The model is kept locally in {staged}"
            ) from error
        self._prune_local()
        model_url = (
            self.destination.url(self.destination.entry)
            if self.destination.entry
            else self.destination.folder
        )
        LOGGER.info("Published the round-%d model (%s) to %s", round_number, self.format, model_url)
        return model_url

    def _stage(self, model, metrics: Mapping[str, Any], round_number: int, version: str) -> Path:
        staged = self.local_dir / version
        staged.mkdir(parents=True, exist_ok=True)
        entry = self.destination.entry
        formats.write(model, self.format, staged / entry if entry else staged, self.input_shape)
        document = {
            **metrics,
            "round": round_number,
            "format": self.format,
            **({"written_as": formats.WRITTEN_AS[self.format]} if self.format in formats.WRITTEN_AS else {}),
            "version": version,
            "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (staged / METRICS_FILENAME).write_text(
            json.dumps(document, indent=2, sort_keys=True, default=str)
        )
        return staged

    def _put_all(self, staged: Path, version: str) -> None:
        files = sorted(
            path for path in staged.rglob("*") if path.is_file() and path.name != METRICS_FILENAME
        )
        relative = [path.relative_to(staged).as_posix() for path in files] + [METRICS_FILENAME]
        keep = self.settings.keep_versions
        if keep:
            for name in relative:
                self._put(staged / name, self.destination.url(version, name))
        for name in relative:
            self._put(staged / name, self.destination.url(name))
        if keep:
            pointer = staged.parent / versions.LATEST_NAME
            pointer.write_text(version + "\n")
            self._put(pointer, self.destination.url(versions.LATEST_NAME))
            self._prune_remote(keep)

    def _put(self, local_file: Path, url: str) -> None:
        self._retry(lambda: self.storage.publish_atomically(local_file, url), f"publishing {url}")

    def _prune_remote(self, keep: int) -> None:
        names = self._retry(
            lambda: self.storage.list_folder(self.destination.folder), "listing versions"
        )
        for name in versions.versions_to_prune(names, keep):
            url = self.destination.url(name)
            self._retry(lambda url=url: self.storage.delete(url), f"deleting {url}")

    def _prune_local(self) -> None:
        names = [path.name for path in self.local_dir.iterdir()] if self.local_dir.is_dir() else []
        for name in versions.versions_to_prune(names, max(self.settings.keep_versions, 1)):
            self.storage.delete(str(self.local_dir / name))


def _retry_transient(attempt: Callable, what: str):
    from plato_sedna.storage import Unreachable
    from plato_sedna.storage.retry import with_retries

    return with_retries(attempt, lambda error: isinstance(error, Unreachable), what)
