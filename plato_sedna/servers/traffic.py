"""Payload bytes on the aggregator's socket, per round: what dashboards and metrics.json show.

Counts what Plato moves over socket.io in chunks (weights to trainers, updates back).
With the S3 transmitter the weights go through S3 and these counts stay near zero.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RoundTraffic:
    """Bytes sent to and received from trainers since the last :meth:`take`."""

    sent: int = 0
    received: int = 0
    sent_total: int = 0
    received_total: int = 0

    def add(self, *, sent: int = 0, received: int = 0) -> None:
        self.sent += sent
        self.received += received
        self.sent_total += sent
        self.received_total += received

    def take(self) -> tuple[int, int]:
        """(sent, received) of the round that ends now; the next round counts from zero."""
        round_bytes = (self.sent, self.received)
        self.sent = self.received = 0
        return round_bytes


class TrafficMeterMixin:
    """Mixed in front of a Plato server: counts the payload chunks it sends and receives."""

    traffic: RoundTraffic

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.traffic = RoundTraffic()

    async def _send_in_chunks(self, data, sid, client_id) -> None:
        self.traffic.add(sent=len(data))
        await super()._send_in_chunks(data, sid, client_id)

    async def _client_chunk_arrived(self, sid, data) -> None:
        self.traffic.add(received=len(data))
        await super()._client_chunk_arrived(sid, data)
