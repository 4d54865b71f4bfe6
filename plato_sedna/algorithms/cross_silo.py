"""Hierarchical (cross-silo) FedAvg, computed in one aggregator: silo models, synced every ``local_rounds``.

Plato's ``fedavg_cross_silo`` runs an edge server per silo as a process of the
central server: each edge server averages its own trainers for
``algorithm.local_rounds`` rounds, then the central server averages the edge
models (weighted by their samples) and every silo starts again from that average.
This module keeps the same models in the aggregator: one per silo, each trained
only by its silo's trainers, merged every ``local_rounds`` rounds. Trainers are
split into silos as Plato splits them (client ids 1..n in ``total_silos``
consecutive, near-equal groups).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Weights = Mapping[str, Any]  # parameter name -> torch tensor


def silo_of(client_id: int, trainer_count: int, total_silos: int) -> int:
    """The silo (1..total_silos) of ``client_id`` among ids 1..trainer_count, as Plato assigns edge servers.

    Ids are split into ``total_silos`` consecutive groups whose sizes differ by at most
    one, the larger groups first; an id beyond ``trainer_count`` joins the last silo.
    """
    if total_silos < 1 or trainer_count < 1:
        raise ValueError("total_silos and trainer_count must be at least 1")
    base, larger = divmod(trainer_count, total_silos)
    last_id = 0
    for silo in range(1, total_silos + 1):
        last_id += base + (1 if silo <= larger else 0)
        if client_id <= last_id:
            return silo
    return total_silos


def weighted_average(models: Sequence[tuple[Weights, float]]) -> dict[str, Any]:
    """The sample-weighted average of ``(weights, samples)`` pairs, each tensor in its own dtype."""
    import torch

    total = float(sum(samples for _, samples in models))
    if total <= 0:
        total, models = float(len(models)), [(weights, 1.0) for weights, _ in models]
    averaged = {}
    for name, first in models[0][0].items():
        accumulated = torch.zeros_like(first, dtype=torch.float64)
        for weights, samples in models:
            accumulated += weights[name].detach().to(torch.float64) * (samples / total)
        averaged[name] = accumulated.round().to(first.dtype) if not first.is_floating_point() else accumulated.to(first.dtype)
    return averaged


@dataclass
class SiloModels:
    """The silos' models between syncs.

    Attributes
    ----------
    local_rounds : int
        Rounds each silo trains on its own between two merges.
    models : dict[int, dict]
        Silo -> its model, once it has trained since the last merge.
    samples : dict[int, float]
        Silo -> the samples behind its model (its trainers' last reports).
    last_merge : dict | None
        The model of the last merge, which silos that have not trained since start from.
    """

    local_rounds: int
    models: dict[int, dict] = field(default_factory=dict)
    samples: dict[int, float] = field(default_factory=dict)
    last_merge: dict | None = None

    def weights_for(self, silo: int, global_weights: Weights) -> Weights:
        """What a trainer of ``silo`` starts from: its silo's model, else the last merge (or ``global_weights``)."""
        if silo in self.models:
            return self.models[silo]
        return self.last_merge if self.last_merge is not None else global_weights

    def is_merge_round(self, round_number: int) -> bool:
        return round_number % self.local_rounds == 0

    def aggregate(self, round_number: int, updates: Sequence[tuple[int, float, Weights]]) -> tuple[dict, bool]:
        """Average each silo's updates into its model; every ``local_rounds`` rounds, merge the silos.

        Parameters
        ----------
        round_number : int
            The round just trained (from 1).
        updates : sequence of (silo, samples, weights)
            The round's trainer updates.

        Returns
        -------
        (dict, bool)
            The global model (the silos' sample-weighted average: after a merge, what every
            silo starts from; between merges, what a merge now would give), and whether
            this round merged.
        """
        by_silo: dict[int, list[tuple[Weights, float]]] = {}
        for silo, samples, weights in updates:
            by_silo.setdefault(silo, []).append((weights, float(samples)))
        for silo, models in by_silo.items():
            self.models[silo] = weighted_average(models)
            self.samples[silo] = sum(samples for _, samples in models)
        merged = weighted_average([(self.models[silo], self.samples[silo]) for silo in sorted(self.models)])
        if not self.is_merge_round(round_number):
            return merged, False
        self.models.clear()
        self.samples.clear()
        self.last_merge = merged
        return merged, True
