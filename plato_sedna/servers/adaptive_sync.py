"""``server.type = "adaptive_sync"``: FedAvg that lowers the trainers' local epochs at gradient bifurcation.

Each round, before aggregating, it computes the consistency rate C of the
trainers' parameter deltas (:mod:`plato_sedna.algorithms.adaptive_sync_consistency`)
and feeds it to GIFT's rule (:mod:`plato_sedna.algorithms.adaptive_sync_frequency`);
tau reaches the trainers in the server response. ``extra_metrics()`` adds tau,
C and the epochs each trainer reported running, per round, to ``metrics.json``.
"""

from __future__ import annotations

import logging

from plato.servers import fedavg

from plato_sedna.algorithms import adaptive_sync
from plato_sedna.algorithms.adaptive_sync_consistency import ConsistencyRate
from plato_sedna.algorithms.adaptive_sync_frequency import SyncDecision, SyncFrequency
from plato_sedna.algorithms.adaptive_sync_settings import AdaptiveSyncSettings

LOGGER = logging.getLogger(__name__)


class Server(fedavg.Server):
    """Plato's FedAvg server that sends each trainer tau and adapts it every round."""

    def __init__(self, model=None, datasource=None, algorithm=None, trainer=None, callbacks=None, **kwargs) -> None:
        super().__init__(model, datasource, algorithm, trainer, callbacks, **kwargs)
        self.sync_settings = AdaptiveSyncSettings.from_config()
        self.sync_consistency = ConsistencyRate(self.sync_settings.moving_average_alpha)
        self.sync_frequency = SyncFrequency(
            self.sync_settings.initial_sync_frequency, self.sync_settings.window, self.sync_settings.warmup_rounds
        )
        self.sync_history: list[dict] = []
        LOGGER.info("Adaptive synchronization: %s", self.sync_settings.describe())

    def init_trainer(self) -> None:
        super().init_trainer()
        if not isinstance(self.algorithm, adaptive_sync.Algorithm):
            from plato_sedna.errors import ConfigError

            raise ConfigError(
                f"server.type = adaptive_sync needs algorithm.type = adaptive_sync (the algorithm is "
                f"{type(self.algorithm).__module__}); set both, or aggregation_algorithm=adaptive_sync in the pod env"
            )

    def customize_server_response(self, server_response: dict, client_id) -> dict:
        response = super().customize_server_response(server_response, client_id)
        response[adaptive_sync.SYNC_FREQUENCY_KEY] = self.sync_frequency.tau
        return response

    def weights_received(self, weights_received):
        """Compute this round's C from the updates (before aggregation) and decide tau for the next."""
        weights_received = super().weights_received(weights_received)
        baseline = self.algorithm.extract_weights()  # still the global model the trainers started from
        deltas = self.algorithm.parameter_deltas(baseline, weights_received)
        decision = self.sync_frequency.observe(self.current_round, self.sync_consistency.update(deltas))
        if decision.lowered:
            self.sync_consistency.reset()
        self._record_sync_decision(decision)
        return weights_received

    def _record_sync_decision(self, decision: SyncDecision) -> None:
        epochs = {_trainer_name(update): getattr(update.report, "local_epochs", None) for update in self.updates}
        self.sync_history.append(
            {
                "round": decision.round,
                "sync_frequency": decision.sync_frequency,
                "consistency_rate": decision.consistency_rate,
                "bifurcation": decision.bifurcation,
                "trainer_epochs": epochs,
            }
        )
        LOGGER.info(
            "[%s] Round %d: consistency rate %.4f (minimum %.4f), tau %d%s",
            self,
            decision.round,
            decision.consistency_rate,
            decision.minimum,
            decision.sync_frequency,
            f"; bifurcation: tau -> {decision.next_sync_frequency}, window -> {self.sync_frequency.window}"
            if decision.lowered
            else "",
        )
        if any(value is None for value in epochs.values()):
            LOGGER.warning(
                "Trainers %s did not report their local epochs: they may ignore tau; set clients.type = adaptive_sync",
                sorted(name for name, value in epochs.items() if value is None),
            )

    def get_logged_items(self) -> dict:
        """Plato's result columns, plus ``sync_frequency`` and ``consistency_rate`` for ``results.types``."""
        last = self.sync_history[-1] if self.sync_history else {}
        return {
            **super().get_logged_items(),
            "sync_frequency": last.get("sync_frequency"),
            "consistency_rate": last.get("consistency_rate"),
        }

    def extra_metrics(self) -> dict:
        """Adaptive synchronization's part of ``metrics.json``."""
        return {
            "algorithm": "adaptive_sync",
            "sync_frequency": self.sync_frequency.tau,
            "bifurcation_window": self.sync_frequency.window,
            "sync_history": list(self.sync_history),
        }


def _trainer_name(update) -> str:
    return getattr(update.report, "trainer", None) or f"client-{update.client_id}"
