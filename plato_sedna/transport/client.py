"""The trainer's side of the S3 transmitter: Plato's client sends and receives through a PayloadStore.

Plato's composable client already takes a payload from S3 when the aggregator's
``payload_done`` names an ``s3_key``, and puts its update in S3 (and sends only the
key) when its ``s3_client`` is set; the store only has to sit in that slot.
"""

from __future__ import annotations

from plato_sedna.transport.store import PayloadStore


def use_payload_store(client, store: PayloadStore) -> None:
    """Route ``client``'s payloads through ``store`` (Plato's ``s3_client`` slot, owner and context)."""
    client.s3_client = store
    client._composable.context.s3_client = store
