"""PayloadStore: one job's payload objects in S3, written once, read once, deleted on reading."""

from __future__ import annotations

import logging
import pickle
from typing import Any

from plato_sedna.errors import ResourceError
from plato_sedna.storage.progress import TransferStats
from plato_sedna.storage.remote import RemoteOptions
from plato_sedna.storage.settings import S3Settings
from plato_sedna.transport.folder import PayloadFolder, is_payload_name, probe_name

LOGGER = logging.getLogger(__name__)

PROBE_CONTENT = b"plato-sedna transmitter check"
MB = 1024 * 1024


class PayloadStore:
    """Model payloads of one job as objects in :class:`PayloadFolder`.

    :meth:`send_to_s3` and :meth:`receive_from_s3` are the interface Plato's client
    calls on its ``s3_client`` (that of ``plato.utils.s3.S3``, whose keys are broken
    in 1.41), so Plato's own send and receive paths run through this store.

    Parameters
    ----------
    folder : PayloadFolder
        Where the objects go.
    settings : S3Settings | None
        Endpoint and keys (Sedna's ``S3_ENDPOINT_URL``, ``ACCESS_KEY_ID``,
        ``SECRET_ACCESS_KEY``); never logged.

    Attributes
    ----------
    stats : TransferStats
        Bytes and objects moved through S3 by this store.
    """

    def __init__(self, folder: PayloadFolder, settings: S3Settings | None) -> None:
        from plato_sedna.storage.s3 import S3Remote  # imports boto3

        self.folder = folder
        self.endpoint = settings.endpoint_name if settings else S3Settings().endpoint_name
        self.stats = TransferStats()
        self._remote = S3Remote(RemoteOptions(self.stats, settings, max_workers=2))

    def put(self, name: str, data: bytes) -> None:
        """Write ``data`` as the object ``name``."""
        location = self.folder.object(name)
        self._remote.put_bytes(location, data)
        LOGGER.debug("Put %s (%.2f MB)", location.url, len(data) / MB)

    def take(self, name: str) -> bytes:
        """Read the object ``name`` and delete it: each payload is read exactly once."""
        location = self.folder.object(name)
        data = self._remote.get_bytes(location)
        self._remote.delete(location)
        LOGGER.info("Took %s (%.2f MB) and deleted it", location.url, len(data) / MB)
        return data

    # Plato's s3_client interface

    def send_to_s3(self, key: str, payload: Any) -> str:
        """Pickle ``payload`` (as Plato's socket path does) into the object ``key``."""
        self.put(key, pickle.dumps(payload))
        return key

    def receive_from_s3(self, key: str) -> Any:
        """The payload in the object ``key``, which is deleted."""
        return pickle.loads(self.take(key))

    # Start and end of a job

    def check(self) -> None:
        """Write, read back and delete a small object, so that a bad endpoint, bucket or key
        fails the pod at start rather than in the first round.

        Raises
        ------
        ResourceError
            Naming the endpoint and the bucket (never a key's secret) and what to check.
        """
        name = probe_name()
        try:
            self.put(name, PROBE_CONTENT)
            if self.take(name) != PROBE_CONTENT:
                raise ResourceError(
                    f"S3 endpoint {self.endpoint} (bucket {self.folder.bucket!r}) returned other "
                    f"content for {self.folder.url}{name} than was written"
                )
        except ResourceError as error:  # its message names the endpoint and the bucket
            raise ResourceError(f"the S3 transmitter cannot use AGG_DATA_PATH folder {self.folder.url}: {error}") from error

    def sweep(self) -> int:
        """Delete every payload object left in the folder (by a trainer or run that ended early).

        Returns
        -------
        int
            How many objects were deleted.
        """
        start = len(self.folder.prefix)
        names = [
            key[start:]
            for key in self._remote.keys_under(self.folder.location())
            if is_payload_name(key[start:])  # only the folder's own payloads, not sub-folders
        ]
        for name in names:
            self._remote.delete(self.folder.object(name))
        LOGGER.info("Swept %s: %d leftover payload object(s) deleted", self.folder.url, len(names))
        return len(names)

    def close(self) -> None:
        self._remote.close()
