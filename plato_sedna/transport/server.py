"""The aggregator's side of the S3 transmitter: Plato's payload send and receive, through S3.

Plato's own S3 path names the global model ``server_payload_<pid>_<round>`` for every
trainer (one object, so the first reader's delete would take it from the others) and
reads updates on the event loop. Here each trainer gets its own object, uploads and
downloads run off the event loop, and the object is deleted once read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle

from plato_sedna.transport.folder import server_payload_name
from plato_sedna.transport.store import MB, PayloadStore

LOGGER = logging.getLogger(__name__)

FAILURE_EXIT_CODE = 1


class S3PayloadServerMixin:
    """Sends and receives model payloads through :attr:`payload_store` when it is set.

    With no store (``TRANSMITTER=ws``) every method defers to Plato's socket path.
    """

    payload_store: PayloadStore | None = None

    async def _send(self, sid, payload, client_id) -> None:
        store = self.payload_store
        if store is None:
            await super()._send(sid, payload, client_id)
            return
        payload = self.outbound_processor.process(payload)
        # Pickled now: aggregation may update the model in place while the upload runs.
        data = pickle.dumps(payload)
        name = server_payload_name(self.current_round, client_id)
        await _exit_on_s3_failure(asyncio.to_thread(store.put, name, data), f"Sending client #{client_id} its payload")
        await self.sio.emit("payload_done", {"id": client_id, "s3_key": name}, room=sid)
        LOGGER.info("Sent %.2f MB of payload data to client #%d through S3 (%s)", len(data) / MB, client_id, name)
        self.comm_overhead += len(data) / MB

    async def _client_payload_done(self, sid, client_id, s3_key=None):
        if s3_key is None:
            await super()._client_payload_done(sid, client_id)
            return
        store = self.payload_store
        if store is None:
            LOGGER.error(
                "Client #%s sent its update through S3, but this aggregator's TRANSMITTER is ws; "
                "give every worker of the job the same TRANSMITTER",
                client_id,
            )
            os._exit(FAILURE_EXIT_CODE)
        data = await _exit_on_s3_failure(asyncio.to_thread(store.take, s3_key), f"Fetching client #{client_id}'s update")
        # Plato's socket path takes it from here: size, logging, processing.
        self.client_payload[sid] = pickle.loads(data)
        await super()._client_payload_done(sid, client_id)

    async def _close(self):
        if self.payload_store is not None:
            try:
                await asyncio.to_thread(self.payload_store.sweep)
            except Exception as error:  # noqa: BLE001 - the job's result is already published
                LOGGER.warning("Could not sweep payload objects from %s: %s", self.payload_store.folder.url, error)
        await super()._close()


async def _exit_on_s3_failure(transfer, what: str):
    """Await ``transfer``; a failure ends the aggregator non-zero (socket.io would swallow it)."""
    try:
        return await transfer
    except Exception:
        LOGGER.exception("%s through S3 failed; the aggregator exits", what)
        os._exit(FAILURE_EXIT_CODE)
