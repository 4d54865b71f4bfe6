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
from collections.abc import Callable
from dataclasses import dataclass

from plato_sedna.clients.backoff import Deadline, retry_delays
from plato_sedna.clients.failures import describe, is_permanent
from plato_sedna.clients.tls import TrainerTls, link_mismatch
from plato_sedna.errors import JobFailed
from plato_sedna.servers.auth import AUTH_TOKEN_KEY, REFUSED_MESSAGE
from plato_sedna.status import TrainerProgress

LOGGER = logging.getLogger(__name__)



@dataclass(frozen=True)
class AggregatorAddress:
    """Where the aggregator listens: candidate hosts (tried in order), a port, and the CA to verify it (https)."""

    hosts: tuple[str, ...]
    port: int
    tls: TrainerTls | None = None

    def urls(self) -> list[str]:
        scheme = "https" if self.tls else "http"
        return [f"{scheme}://{host}:{self.port}" for host in self.hosts]


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
        final_record: Callable[[str], object | None] | None = None,
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
        self.steps_in_flight = 0  # training steps running; a reconnect waits for them to end
        self.run_id: str | None = None  # the aggregator's run, from its welcome
        # run id -> the aggregator's final resume record of that run (or None): how a trainer
        # that lost its link as the job ended learns that it ended (servers.resume.final_record)
        self._final_record = final_record

    def _events(self):
        from plato.clients.composable import ComposableClientEvents

        session = self

        class SessionEvents(ComposableClientEvents):
            """Plato's client events, plus job completion and failure capture."""

            # socket.io calls on_<event>: the aggregator's servers.sedna.WELCOME_EVENT
            async def on_plato_sedna_welcome(self, data):
                session.run_id = (data or {}).get("run_id") or session.run_id
                if (data or {}).get("aggregator_tests"):
                    session.leave_testing_to_the_aggregator()

            # socket.io calls on_<event>: the aggregator refused the connection (servers.auth)
            async def on_connect_error(self, data=None):
                session.refusal = (data or {}).get("message") if isinstance(data, dict) else None

            # socket.io calls on_<event>: the aggregator's servers.sedna.REFUSED_EVENT (no reconnect)
            async def on_plato_sedna_refused(self, data):
                session.failure = f"the aggregator refused it: {(data or {}).get('message')}"

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
        """Run a training step; a failure ends the session instead of hanging it.

        An error that would recur (:func:`failures.is_permanent`: a bad config, a missing
        file, data or weights that do not fit) ends the session at its first occurrence,
        also where Plato swallowed it and dropped the link itself (it does so for a
        ``ValueError`` in training, which is what training in a spawned process raises
        when that process failed). A step that failed because the link went down under it
        is no failure: its update is dropped, and the aggregator asks again once the
        trainer has reconnected.
        """
        link = self.sio
        self.steps_in_flight += 1
        try:
            error = None
            try:
                await step
            except Exception as raised:
                error = raised
            error = self._swallowed_training_error() or error
            if error is None:
                context = self.client._composable.context
                self.progress.round_reported(context.current_round, context.latest_report)
            elif is_permanent(error):
                LOGGER.error("Training failed with an error that will recur; this trainer stops: %s", describe(error))
                LOGGER.debug("The training failure's traceback", exc_info=error)
                await self._fail(error)
            elif link is not self.sio or not link.connected:
                LOGGER.warning("This round's update was not delivered: the link to the aggregator was lost (%s)", error)
            else:
                LOGGER.error("Training step failed", exc_info=error)
                await self._fail(error)
        finally:
            self.steps_in_flight -= 1

    def _swallowed_training_error(self) -> BaseException | None:
        """The training error Plato's client caught (and answered by disconnecting), once."""
        state = getattr(self.client._composable.context, "state", None)
        return state.pop("training_error", None) if isinstance(state, dict) else None

    async def _fail(self, error: BaseException) -> None:
        """End the session with ``error`` as its failure."""
        self.failure = describe(error)
        if self.sio is not None and self.sio.connected:
            await self.sio.disconnect()

    async def _connect(self, address: AggregatorAddress, deadline: Deadline) -> str | None:
        """The URL connected to, or None when the job ended while this trainer was away."""
        import socketio

        delays = retry_delays(deadline)
        attempt = 0
        while True:
            for url in address.urls():
                attempt += 1
                session = address.tls.http_session if address.tls else None  # verifies against the job's CA
                self.sio = socketio.AsyncClient(reconnection=False, http_session=session)
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
                mismatch = await link_mismatch(url, address.tls, last_error)  # TLS on one side only, or a bad CA
                if mismatch:
                    raise JobFailed(f"trainer {self.identity} cannot connect: {mismatch}")
            if self._ended_while_away():
                return None
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
        """Take part in the job until it ends; return why it stopped, or raise JobFailed.

        A link lost before the job completed (the aggregator restarted, the network
        dropped) is re-established with the same identity and data, waiting up to
        ``connect_timeout_s`` again; only an aggregator that does not come back fails.
        """
        url = await self._join(address, Deadline(connect_timeout_s))
        while url is not None:
            await self.sio.wait()
            if not self.failure and self.stop_reason is None:
                await self._steps_settled()  # a step still running may end the session (guard)
            if self.failure:
                raise JobFailed(f"trainer {self.identity} failed: {self.failure}")
            if self.stop_reason is not None:
                return self.stop_reason
            LOGGER.warning(
                "Lost the link to the aggregator at %s before the job completed; "
                "reconnecting as %s (waiting up to %.0f s)",
                url, self.identity, connect_timeout_s,
            )
            try:
                rejoined = await self._join(address, Deadline(connect_timeout_s))
            except JobFailed as error:
                raise JobFailed(
                    f"trainer {self.identity} lost its connection to the aggregator at {url} "
                    f"before the job completed and could not reconnect: {error}"
                ) from None
            url = rejoined  # None: the job ended while this trainer was away
        return self.stop_reason

    async def _join(self, address: AggregatorAddress, deadline: Deadline) -> str | None:
        """Connect, hand the socket to Plato's client, and announce this trainer's identity.

        None when, instead, the aggregator's final record shows the job ended meanwhile.
        """
        url = await self._connect(address, deadline)
        if url is None:
            return None
        core = self.client._composable
        core.context.sio = self.sio  # Plato's client sends its reports through context.sio
        LOGGER.info("Connected to the aggregator at %s as %s", url, self.identity)
        await self.sio.emit("client_alive", {"pid": self.identity, "id": self.preferred_id or 0})
        core._sync_owner_from_context()
        return url

    def _ended_while_away(self) -> bool:
        """Whether the aggregator's final record shows that its run ended (sets the stop reason)."""
        if self.run_id is None or self._final_record is None:
            return False
        record = self._final_record(self.run_id)
        if record is None:
            return False
        self.stop_reason = record.stop_reason or "completed"
        LOGGER.info(
            "The aggregator completed the job while this trainer was away (%s after round %d; "
            "from its final resume record)",
            self.stop_reason, record.round,
        )
        return True

    async def _steps_settled(self) -> None:
        """Wait for a training step still running to end, so that it cannot report on the new link."""
        if self.steps_in_flight:
            LOGGER.info("Waiting for the current training step to end")
        while self.steps_in_flight:
            await asyncio.sleep(0.2)
