"""A trainer's link to the aggregator, around any composable Plato client.

Replaces the connection step of Plato's client, which connects once, gives up
on a refused connection and announces itself by PID. Here the trainer waits
with backoff until the aggregator accepts, announces its stable identity, and
learns whether the job completed (exit 0) or the link was lost (exit non-zero).
After each round it sent, it tells Sedna's LocalController (``TrainerProgress``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from plato_sedna.clients.backoff import Deadline, retry_delays
from plato_sedna.errors import JobFailed
from plato_sedna.servers.auth import AUTH_TOKEN_KEY, REFUSED_MESSAGE
from plato_sedna.status import TrainerProgress

LOGGER = logging.getLogger(__name__)



@dataclass(frozen=True)
class AggregatorAddress:
    """Where the aggregator listens: candidate hosts (tried in order) and a port."""

    hosts: tuple[str, ...]
    port: int

    def urls(self) -> list[str]:
        return [f"http://{host}:{self.port}" for host in self.hosts]


class TrainerSession:
    """One trainer's membership in the job: connect, train when asked, end."""

    def __init__(
        self,
        client,
        identity: str,
        preferred_id: int | None,
        progress: TrainerProgress | None = None,
        *,
        token: str | None = None,
    ) -> None:
        self.client = client
        self.identity = identity
        self.preferred_id = preferred_id
        self.progress = progress or TrainerProgress(None)
        self.stop_reason: str | None = None
        self.failure: str | None = None
        self.sio = None
        self._token = token  # the job's shared trainer token: sent at connect, never logged
        self.refusal: str | None = None

    def _events(self):
        from plato.clients.composable import ComposableClientEvents

        session = self

        class SessionEvents(ComposableClientEvents):
            """Plato's client events, plus job completion and failure capture."""

            # socket.io calls on_<event>: the aggregator's servers.sedna.WELCOME_EVENT
            async def on_plato_sedna_welcome(self, data):
                if (data or {}).get("aggregator_tests"):
                    session.leave_testing_to_the_aggregator()

            # socket.io calls on_<event>: the aggregator refused the connection (servers.auth)
            async def on_connect_error(self, data=None):
                session.refusal = (data or {}).get("message") if isinstance(data, dict) else None

            # socket.io calls on_<event>: the aggregator's servers.sedna.JOB_DONE_EVENT
            async def on_plato_sedna_job_done(self, data):
                session.stop_reason = (data or {}).get("stop_reason", "completed")
                session.progress.aggregator_reported((data or {}).get("accuracy"))
                LOGGER.info("The aggregator completed the job (%s)", session.stop_reason)

            async def on_payload_to_arrive(self, data):
                session.progress.aggregator_reported(data["response"].get("global_accuracy"))
                await session.guard(super().on_payload_to_arrive(data))

            async def on_payload_done(self, data):
                await session.guard(super().on_payload_done(data))

            async def on_payload(self, data):
                await session.guard(super().on_payload(data))

        return SessionEvents(namespace="/", core=self.client._composable)

    def leave_testing_to_the_aggregator(self) -> None:
        """The aggregator tests the global model: train on all local data, skip local tests."""
        from plato.config import Config

        if not Config().clients.do_test:
            return
        LOGGER.info("The aggregator tests the global model; this trainer uses all its data for training")
        Config().clients.do_test = False
        self.progress.tests_every = None
        context = self.client._composable.context
        context.datasource = None  # reloaded without the held-out test split
        self.client._load_data()

    async def guard(self, step) -> None:
        """Run a training step; a failure ends the session instead of hanging it."""
        try:
            await step
        except Exception as error:  # noqa: BLE001 - reported as the trainer's failure
            LOGGER.exception("Training step failed")
            self.failure = f"{type(error).__name__}: {error}"
            await self.sio.disconnect()
            return
        context = self.client._composable.context
        self.progress.round_reported(context.current_round, context.latest_report)

    async def _connect(self, address: AggregatorAddress, deadline: Deadline) -> str:
        import socketio

        delays = retry_delays(deadline)
        attempt = 0
        while True:
            for url in address.urls():
                attempt += 1
                self.sio = socketio.AsyncClient(reconnection=False)
                self.sio.register_namespace(self._events())
                auth = {AUTH_TOKEN_KEY: self._token} if self._token else None
                try:
                    await self.sio.connect(url, auth=auth, wait_timeout=min(30, max(1, deadline.left_s)))
                    return url
                except (socketio.exceptions.ConnectionError, OSError) as error:
                    last_error = error
                if self.refusal == REFUSED_MESSAGE:  # retrying cannot help: fail the pod now
                    raise JobFailed(
                        f"the aggregator at {url} refused trainer {self.identity}: "
                        + ("its trainer token is wrong" if self._token else "it has no trainer token")
                        + "; give every worker of the job the same PLATO_SEDNA_TOKEN (or PLATO_SEDNA_TOKEN_FILE)"
                    )
            delay = next(delays, None)
            if delay is None:
                raise JobFailed(
                    f"the aggregator at {', '.join(address.urls())} did not accept a connection "
                    f"within {deadline.budget_s:.0f} s ({attempt} attempts; last error: {last_error}); "
                    "check that the aggregation worker runs, or raise CONNECT_TIMEOUT"
                )
            LOGGER.info(
                "Aggregator not reachable yet (%s); retrying in %.0f s (%.0f of %.0f s used)",
                last_error,
                delay,
                deadline.used_s,
                deadline.budget_s,
            )
            await asyncio.sleep(delay)

    async def run(self, address: AggregatorAddress, connect_timeout_s: float) -> str:
        """Take part in the job until it ends; return why it stopped, or raise JobFailed."""
        url = await self._connect(address, Deadline(connect_timeout_s))
        core = self.client._composable
        core.context.sio = self.sio
        LOGGER.info("Connected to the aggregator at %s as %s", url, self.identity)
        await self.sio.emit("client_alive", {"pid": self.identity, "id": self.preferred_id or 0})
        core._sync_owner_from_context()
        await self.sio.wait()
        if self.failure:
            raise JobFailed(f"trainer {self.identity} failed: {self.failure}")
        if self.stop_reason is None:
            raise JobFailed(
                f"trainer {self.identity} lost its connection to the aggregator at {url} "
                "before the job completed"
            )
        return self.stop_reason
