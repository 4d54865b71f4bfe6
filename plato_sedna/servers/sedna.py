"""The aggregation worker: any Plato server class, made safe to run in a Sedna pod.

What it changes, and why:
- trainers are keyed by their stable identity, not by PID (PID 1 in every pod);
- each trainer trains as its own logical client id, every round;
- a trainer leaving does not close the server; on rejoin it gets its round again;
- after every round the global model and ``metrics.json`` are published to
  ``MODEL_URL`` and a progress line is printed;
- at the end trainers are told the job completed (so they exit 0), and a failure
  in aggregation or publishing ends the process non-zero.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from functools import cache
from pathlib import Path

from plato_sedna import runtime_config
from plato_sedna.errors import ConfigError, PlatoSednaError
from plato_sedna.models import global_model
from plato_sedna.servers.auth import TrainerAuthMixin
from plato_sedna.servers.identity import ROSTER_FILE_NAME, TrainerRoster
from plato_sedna.servers.metrics_endpoint import JobMetrics, MetricsEndpoint
from plato_sedna.servers.progress import JobProgress, RoundRecord, reported_accuracy
from plato_sedna.servers.resume_server import ResumeMixin
from plato_sedna.servers.stop import RoundState, stop_condition_from
from plato_sedna.servers.tls import TlsServerMixin
from plato_sedna.servers.traffic import TrafficMeterMixin
from plato_sedna.servers.trainer_loss import TrainerLossMixin
from plato_sedna.servers.trigger import AggregationTrigger, AggregationTriggerMixin
from plato_sedna.transport.server import S3PayloadServerMixin

LOGGER = logging.getLogger(__name__)

JOB_DONE_EVENT = "plato_sedna_job_done"
# Sent to each trainer as it registers: its id, and whether the aggregator tests the
# global model itself (then the trainer need not hold out a test split of its data).
WELCOME_EVENT = "plato_sedna_welcome"
# Sent to a trainer the aggregator turns away (its slot or partition is taken), with why.
REFUSED_EVENT = "plato_sedna_refused"
FAILURE_EXIT_CODE = 1
IN_FLIGHT_WAIT_S = 120.0
JOB_DONE_FLUSH_S = 0.5


class SednaServerMixin:
    """Mixed in front of a Plato server class by :func:`sedna_server_class`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.job_name = runtime_config.sedna("job_name")
        self.roster_path = Path(runtime_config.plato_path("checkpoint_path")) / ROSTER_FILE_NAME
        self.roster = TrainerRoster.restore(
            self.roster_path, int(runtime_config.setting("clients", "total_clients")), self.job_name
        )
        self.stop_condition = stop_condition_from(
            runtime_config.table("server", "stop_condition"),
            runtime_config.setting("trainer", "rounds"),
            runtime_config.setting("trainer", "target_accuracy"),
        )
        self.trigger = AggregationTrigger.from_table(runtime_config.table("server", "aggregation_trigger"))
        rounds_planned = int(self.stop_condition.criteria.get("rounds", self.stop_condition.max_rounds))
        self.progress = JobProgress(rounds_planned=rounds_planned)
        LOGGER.info("Stop condition: %s", self.stop_condition.describe())
        self.model_url = runtime_config.sedna("model_url")
        self.tests_global_model = bool(runtime_config.setting("server", "do_test", True))
        self.configured_per_round = None
        self.started_at = time.monotonic()
        self.round_started_at = self.started_at
        self.metrics = JobMetrics(job=str(self.job_name or "plato"))
        self.metrics_endpoint = _metrics_endpoint(self.metrics, runtime_config.setting("server", "metrics_port"))

    # Trainers joining and leaving

    # Set as the job ends: a trainer registering after that (in the last moments before the
    # sockets close) is told at once instead of waiting for a round that never comes.
    job_done_message: dict | None = None
    run_id: str | None = None  # set by servers.resume_server: a trainer away at the end checks the final record by it

    async def register_client(self, sid, client_process_id, client_id):
        if self.job_done_message is not None:
            await self.sio.emit(JOB_DONE_EVENT, self.job_done_message, room=sid)
            return
        identity = self._identity(sid, client_process_id)
        known = identity in self.roster.ids_by_identity
        refusal = self.roster.refusal(identity, client_id or None)
        if refusal is not None:
            LOGGER.warning("Trainer %s rejected: %s", identity, refusal)
            await self.sio.emit(REFUSED_EVENT, {"message": refusal}, room=sid)
            await self.sio.disconnect(sid)
            return
        logical_id = self.roster.assign(identity, client_id or None)
        if not known:
            self.roster.save(self.roster_path, self.job_name)
        rejoining = self._awaits_update_from(logical_id)
        # Before Plato's registration, which may already start the round on this socket.
        welcome = {"client_id": logical_id, "aggregator_tests": self.tests_global_model, "run_id": self.run_id}
        await self.sio.emit(WELCOME_EVENT, welcome, room=sid)
        LOGGER.info("Trainer %s is client #%d%s", identity, logical_id, " (rejoined)" if rejoining else "")
        await super().register_client(sid, logical_id, logical_id)
        if rejoining:
            await self._resend_round(sid, logical_id)

    @staticmethod
    def _identity(sid: str, client_process_id) -> str:
        if isinstance(client_process_id, str) and client_process_id:
            return client_process_id
        # A plain Plato client sends its PID, which is not unique across pods.
        return f"process-{client_process_id}-{sid}"

    def _awaits_update_from(self, client_id: int) -> bool:
        return (
            self.current_round > 0
            and client_id in (self.selected_clients or [])
            and client_id not in self.current_reported_clients
        )

    async def _resend_round(self, sid: str, client_id: int) -> None:
        response = {"id": client_id, "current_round": self.current_round}
        response = self.customize_server_response(response, client_id=client_id)
        payload = self.customize_server_payload(self.algorithm.extract_weights())
        self.training_sids.append(sid)
        await self.sio.emit("payload_to_arrive", {"response": response}, room=sid)
        await self._send(sid, payload, client_id)

    async def _client_disconnected(self, sid):
        for client_id, process in list(self.clients.items()):
            if process["sid"] != sid:
                continue
            del self.clients[client_id]
            if sid in self.training_sids:
                self.training_sids.remove(sid)
            LOGGER.warning(
                "Trainer %s (client #%d) disconnected; %d trainer(s) connected. "
                "The job goes on and the trainer can rejoin.",
                self.roster.identity_of(client_id),
                client_id,
                len(self.clients),
            )

    def customize_server_response(self, server_response: dict, client_id) -> dict:
        response = super().customize_server_response(server_response, client_id)
        if self.tests_global_model and self.progress.history:
            response["global_accuracy"] = self.progress.history[-1].accuracy  # for the trainer's reports
        return response

    # Selecting trainers

    def choose_clients(self, clients_pool, clients_count):
        # Trainers still busy with a round aggregated without them cannot start this one.
        available = [
            client_id
            for client_id in clients_pool
            if client_id in self.clients and self.clients[client_id]["sid"] not in self.training_sids
        ]
        if self.configured_per_round is None:
            self.configured_per_round = self.clients_per_round
        selected_count = min(self.configured_per_round, len(available))
        if selected_count < self.configured_per_round:
            LOGGER.warning(
                "Only %d of %d trainers are connected and free; this round trains %d",
                len(available),
                self.configured_per_round,
                selected_count,
            )
        chosen = self._select_clients_with_strategy(available, selected_count)
        # Plato aggregates once clients_per_round updates are in: the trigger's threshold.
        self.clients_per_round = self.trigger.threshold(selected_count)
        # Plato hands the i-th chosen id to the first free process in dict order:
        # order the processes as chosen so that each trainer trains as itself.
        ordered = {client_id: self.clients[client_id] for client_id in chosen}
        ordered.update(self.clients)
        self.clients = ordered
        return chosen

    # Rounds, publishing, closing

    # Plato runs these inside socket.io tasks, which log and swallow exceptions: the
    # job would hang. A failure there ends the aggregator non-zero instead.

    async def _select_clients(self, for_next_batch=False):
        await _exit_on_failure(super()._select_clients(for_next_batch), "Selecting trainers")

    async def _process_reports(self):
        await _exit_on_failure(super()._process_reports(), "Aggregating the round's updates")

    def clients_processed(self) -> None:
        super().clients_processed()
        now = time.monotonic()
        sent, received = self.traffic.take()
        record = RoundRecord(
            round=self.current_round,
            accuracy=reported_accuracy(self.accuracy),
            elapsed_s=round(now - self.started_at, 3),
            clients=len(self.updates),
            loss=mean_train_loss(self.updates),
            bytes_sent=sent,
            bytes_received=received,
        )
        self.progress.history.append(record)
        self.metrics.update(
            round=record.round,
            accuracy=record.accuracy,
            loss=record.loss,
            connected_trainers=len(self.clients),
            round_duration_seconds=now - self.round_started_at,
            round_bytes_sent=sent,
            round_bytes_received=received,
            bytes_sent_total=self.traffic.sent_total,
            bytes_received_total=self.traffic.received_total,
        )
        self.round_started_at = now
        self._publish()
        self.progress.announce(record)

    def save_to_checkpoint(self) -> None:
        super().save_to_checkpoint()
        self.roster.save(self.roster_path, self.job_name)

    async def wrap_up(self) -> None:
        """Checkpoint, then stop when the job's stop condition says so (replaces Plato's check)."""
        self.save_to_checkpoint()
        losses = [record.loss for record in self.progress.history if record.loss is not None]
        state = RoundState(round=self.current_round, accuracy=self.accuracy, losses=losses)
        reason = self._stop_after_personalization or self.stop_condition.reason(state)
        if reason is not None and self._starts_personalization(reason):
            return
        if reason is not None:
            self.progress.stop_reason = reason
            await self._close()

    _stop_after_personalization: str | None = None

    def _starts_personalization(self, reason: str) -> bool:
        """fedavg_personalized: once the job would stop, one more round first, every trainer eligible.

        Plato's personalized server adds that round after ``trainer.rounds``; here it
        follows whichever stop condition ended the job, which ends after it.
        """
        if getattr(self, "personalization_started", True):  # not personalized, or the round is done
            return False
        self.personalization_started = True
        # Plato's personalized selection draws from every trainer once past personalization_rounds.
        self.client_selection_strategy.personalization_rounds = self.current_round
        self._stop_after_personalization = reason
        LOGGER.info(
            "Stop condition met after round %d (%s); one personalization round first, every trainer eligible",
            self.current_round,
            reason,
        )
        return True

    def _publish(self) -> None:
        if not self.model_url:
            return
        try:
            # A server class may add to metrics.json (e.g. MistNet's epsilon and upload sizes).
            extra = getattr(self, "extra_metrics", dict)()
            global_model.publish_global_model(
                self.model_url,
                self.algorithm.model,
                {**self.progress.metrics(), **extra},
                samples=sum(update.report.num_samples for update in self.updates),
                final=self.progress.stop_reason is not None,
            )
        except PlatoSednaError as error:  # names the URL and the local copy: no traceback needed
            LOGGER.error("Publishing the model to MODEL_URL %s failed: %s", self.model_url, error)
            os._exit(FAILURE_EXIT_CODE)
        except Exception:  # a model that cannot be published fails the job
            LOGGER.exception("Publishing the model to MODEL_URL %s failed", self.model_url)
            os._exit(FAILURE_EXIT_CODE)

    async def _close(self):
        self.progress.stop_reason = self.progress.stop_reason or "closed"
        LOGGER.info("Job finished after %d round(s): %s", self.current_round, self.progress.stop_reason)
        self._publish()
        await self._wait_for_trainers_in_flight()
        done = {"stop_reason": self.progress.stop_reason, "accuracy": reported_accuracy(self.accuracy)}
        self.job_done_message = done
        await self.sio.emit(JOB_DONE_EVENT, done)
        await asyncio.sleep(JOB_DONE_FLUSH_S)  # let the event reach trainers before the sockets close
        _clear_shared_round_store(getattr(self, "round_store", None))
        await super()._close()

    async def _wait_for_trainers_in_flight(self) -> None:
        """Trainers still training (their update is no longer needed) hear the end only once idle."""
        deadline = time.monotonic() + IN_FLIGHT_WAIT_S
        if self.training_sids:
            LOGGER.info(
                "Waiting up to %.0f s for %d trainer(s) still training before ending the job",
                IN_FLIGHT_WAIT_S,
                len(self.training_sids),
            )
        while self.training_sids and time.monotonic() < deadline:
            await asyncio.sleep(0.2)


def _clear_shared_round_store(store) -> None:
    """MPC: the job's secret shares are not left in the shared store (S3 or a mounted folder)."""
    if store is None:  # only Plato's MPC servers have a round store
        return
    from plato_sedna.mpc_store import SharedRoundStore

    if isinstance(store, SharedRoundStore):
        try:
            store.reset()
            LOGGER.info("Deleted the MPC round store %s", store.url)
        except Exception:  # the job's result is published already; a leftover is logged, not fatal
            LOGGER.warning("Could not delete the MPC round store %s; delete it by hand", store.url, exc_info=True)


def mean_train_loss(updates) -> float | None:
    """The sample-weighted mean of the trainers' reported training loss, if they report one."""
    reported = [
        (update.report.train_loss, update.report.num_samples)
        for update in updates
        if getattr(update.report, "train_loss", None) is not None
    ]
    total = sum(samples for _, samples in reported)
    if not reported or total == 0:
        return None
    return sum(loss * samples for loss, samples in reported) / total


async def _exit_on_failure(step, what: str) -> None:
    try:
        await step
    except Exception:  # any failure here must end the pod non-zero
        LOGGER.exception("%s failed; the aggregator exits", what)
        os._exit(FAILURE_EXIT_CODE)


def _metrics_endpoint(metrics: JobMetrics, port) -> MetricsEndpoint | None:
    """The Prometheus endpoint when ``[server] metrics_port`` is set (0: any free port)."""
    if port is None:
        return None
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"server.metrics_port = {port!r} is not a port; use 1 to 65535, or 0 for any free port")
    try:
        return MetricsEndpoint(metrics, port).start()
    except OSError as error:
        raise ConfigError(f"server.metrics_port = {port} cannot be used ({error.strerror}); pick another port") from None


@cache
def sedna_server_class(server_class: type) -> type:
    """Return ``server_class`` with :class:`SednaServerMixin` (behind the token check) in front of it."""
    return type(
        f"Sedna{server_class.__name__}",
        (TlsServerMixin, TrainerAuthMixin, ResumeMixin, TrainerLossMixin, SednaServerMixin, AggregationTriggerMixin, TrafficMeterMixin, S3PayloadServerMixin, server_class),
        {},
    )
