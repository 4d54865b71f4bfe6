"""``server.type = "sedna_cross_silo"``: Plato's cross-silo FedAvg in one aggregator pod.

What ``aggregation_algorithm = fedavg_cross_silo`` runs in Sedna pods. Plato's
central server would spawn its edge servers as processes listening on ports the
job's Service does not expose; here the aggregator keeps each silo's model itself
(:mod:`plato_sedna.algorithms.cross_silo`): a trainer receives its silo's model,
the silo's updates are averaged into it, and every ``algorithm.local_rounds``
rounds the silos are merged into the global model. Between merges the global
model (tested and published) is what a merge would give.
"""

from __future__ import annotations

import logging

from plato.config import Config
from plato.servers import fedavg

from plato_sedna.algorithms.cross_silo import SiloModels, silo_of

LOGGER = logging.getLogger(__name__)


class Server(fedavg.Server):
    """Plato's FedAvg server with per-silo models, merged every ``local_rounds`` rounds."""

    def __init__(self, model=None, datasource=None, algorithm=None, trainer=None, callbacks=None, **kwargs) -> None:
        super().__init__(model, datasource, algorithm, trainer, callbacks, **kwargs)
        self.total_silos = int(Config().algorithm.total_silos)
        self.silos = SiloModels(local_rounds=int(Config().algorithm.local_rounds))
        self.merge_rounds: list[int] = []
        LOGGER.info(
            "Cross-silo FedAvg: %d trainers in %d silos (%s), merged every %d round(s)",
            self.total_clients,
            self.total_silos,
            "; ".join(f"silo {silo}: {ids}" for silo, ids in self.silo_members().items()),
            self.silos.local_rounds,
        )

    def silo_members(self) -> dict[int, list[int]]:
        members: dict[int, list[int]] = {}
        for client_id in range(1, self.total_clients + 1):
            members.setdefault(self.silo(client_id), []).append(client_id)
        return members

    def silo(self, client_id: int) -> int:
        return silo_of(client_id, self.total_clients, self.total_silos)

    def customize_server_payload(self, payload):
        """The selected trainer's silo model (Plato calls this once per trainer it sends to)."""
        payload = super().customize_server_payload(payload)
        return self.silos.weights_for(self.silo(self.selected_client_id), payload)

    async def aggregate_weights(self, updates, baseline_weights, weights_received):
        """Each silo's updates into its model; the silos' average as the global model."""
        trained = [
            (self.silo(update.client_id), update.report.num_samples, weights)
            for update, weights in zip(updates, weights_received)
        ]
        merged_model, merged = self.silos.aggregate(self.current_round, trained)
        silos = sorted({silo for silo, _, _ in trained})
        if merged:
            self.merge_rounds.append(self.current_round)
            LOGGER.info("[%s] Round %d: silos %s trained; merged every silo into the global model", self, self.current_round, silos)
        else:
            LOGGER.info(
                "[%s] Round %d: silos %s trained their own models (next merge after round %d)",
                self,
                self.current_round,
                silos,
                self.current_round + self.silos.local_rounds - self.current_round % self.silos.local_rounds,
            )
        return merged_model

    def extra_metrics(self) -> dict:
        """Cross-silo's part of ``metrics.json``: the silos and the rounds that merged them."""
        return {
            "algorithm": "fedavg_cross_silo",
            "silos": {str(silo): ids for silo, ids in self.silo_members().items()},
            "local_rounds": self.silos.local_rounds,
            "merge_rounds": list(self.merge_rounds),
        }
