"""Where a job's payload objects live (``AGG_DATA_PATH`` + namespace + job), and their names."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from plato_sedna.errors import ConfigError, ResourceError
from plato_sedna.storage.urls import Location, parse_url

# Plato's clients name their updates client_payload_<id>_<hex>; the aggregator's are
# server_payload_<round>_<client id>_<hex>; probe_<hex> is the check at start.
PAYLOAD_PREFIXES = ("server_payload_", "client_payload_", "probe_")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")


def server_payload_name(round_number: int, client_id: int) -> str:
    """A fresh name for the global model the aggregator sends one trainer in one round."""
    return f"server_payload_{round_number}_{client_id}_{secrets.token_hex(4)}"


def probe_name() -> str:
    """A fresh name for the small object written and deleted by the check at start."""
    return f"probe_{secrets.token_hex(6)}"


def is_payload_name(name: str) -> bool:
    """Whether ``name`` is one the transmitter writes (the sweep deletes only those)."""
    return _NAME.fullmatch(name) is not None and name.startswith(PAYLOAD_PREFIXES)


@dataclass(frozen=True)
class PayloadFolder:
    """The S3 folder of one job's payloads: ``s3://<bucket>/<AGG_DATA_PATH key>/<namespace>/<job>/``.

    Attributes
    ----------
    bucket : str
        The bucket of ``AGG_DATA_PATH``.
    prefix : str
        The folder's key prefix, ending in ``/`` (empty for a bucket root without a job).
    """

    bucket: str
    prefix: str

    @classmethod
    def from_agg_data_path(
        cls, agg_data_path: str | None, *, namespace: str | None = None, job_name: str | None = None
    ) -> PayloadFolder:
        """The folder for ``AGG_DATA_PATH`` (``s3://bucket/prefix``) and this job.

        Raises
        ------
        ConfigError
            When ``agg_data_path`` is unset or not an ``s3://bucket[/prefix]`` URL.
        """
        if not agg_data_path:
            raise ConfigError(
                "TRANSMITTER=s3 needs AGG_DATA_PATH=s3://<bucket>/<prefix> for the model payloads "
                "(spec.transmitter.s3.aggDataPath of the FederatedLearningJob); set it, or use "
                "TRANSMITTER=ws"
            )
        location = parse_url(agg_data_path)
        if location.scheme != "s3" or not location.netloc:
            raise ConfigError(
                f"AGG_DATA_PATH={location.display!r} is not an s3://<bucket>/<prefix> URL; "
                "the s3 transmitter keeps payloads in S3"
            )
        parts = [part for part in (location.path.strip("/"), namespace, job_name) if part]
        return cls(location.netloc, "".join(f"{part}/" for part in parts))

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def location(self) -> Location:
        """The folder itself, as the storage layer takes it."""
        return Location(self.url, "s3", self.bucket, self.prefix)

    def object(self, name: str) -> Location:
        """The object ``name`` in this folder.

        Raises
        ------
        ResourceError
            When ``name`` is not one segment of letters, digits, ``_``, ``.`` and ``-``
            (a peer cannot point the reader at another key of the bucket).
        """
        if _NAME.fullmatch(name or "") is None:
            raise ResourceError(
                f"payload object name {name!r} is not allowed: expected one segment of letters, "
                f"digits, '_', '.' and '-' inside {self.url}"
            )
        key = self.prefix + name
        return Location(f"s3://{self.bucket}/{key}", "s3", self.bucket, key)
