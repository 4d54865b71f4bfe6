"""``algorithm.type = "adaptive_sync"``: FedAvg whose trainers synchronize more often as training matures.

The aggregator (:mod:`plato_sedna.servers.adaptive_sync`) measures how
consistently the trainers move the parameters and lowers tau, the local epochs
per round, at each gradient bifurcation; trainers
(:mod:`plato_sedna.clients.adaptive_sync`) run the tau they are sent. The
weights exchanged are FedAvg's; this class only adds the parameters' deltas
the consistency rate is computed on.
"""

from __future__ import annotations

from plato.algorithms import fedavg

# Sent to each trainer in the server response: tau, its local epochs for the round.
SYNC_FREQUENCY_KEY = "sync_frequency"


class Algorithm(fedavg.Algorithm):
    """FedAvg, plus the deltas of the model's parameters (not of its buffers)."""

    def parameter_deltas(self, baseline: dict, weights_received: list[dict]) -> list[dict]:
        """Each update's change of every parameter; BN statistics and counters are left out."""
        names = [name for name, _ in self.model.named_parameters() if name in baseline]
        return [{name: weights[name] - baseline[name] for name in names} for weights in weights_received]
