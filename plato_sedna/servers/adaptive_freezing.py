"""``server.type = "adaptive_freezing"``: FedAvg whose aggregator decides which parameters freeze (APF).

Each round the aggregator sends every selected trainer the round's mask in its
response (1 bit per scalar), expands the trainers' masked updates with the
global values at the frozen positions (so frozen scalars get a zero delta and
FedAvg stays as it is), and after aggregating checks the global model's
stability to make the next round's mask. ``extra_metrics()`` adds the frozen
fraction of every round to ``metrics.json``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from plato.servers import fedavg

from plato_sedna.algorithms import adaptive_freezing
from plato_sedna.algorithms.adaptive_freezing_payload import (
    RESPONSE_KEY,
    MaskedUpdate,
    mask_to_response,
)
from plato_sedna.algorithms.adaptive_freezing_state import Mask, StabilityTracker

LOGGER = logging.getLogger(__name__)

MASKS_KEPT = 4  # rounds whose mask is kept for updates still on their way


class Server(fedavg.Server):
    """Plato's FedAvg server with the freezing mask made and applied here."""

    def __init__(self, model=None, datasource=None, algorithm=None, trainer=None, callbacks=None, **kwargs) -> None:
        super().__init__(model, datasource, algorithm, trainer, callbacks, **kwargs)
        self.tracker: StabilityTracker | None = None
        self.masks: dict[int, tuple[Mask, dict]] = {}  # round -> (mask, its response message)
        self.frozen_by_round: dict[int, float] = {}

    def init_trainer(self) -> None:
        super().init_trainer()
        adaptive_freezing.require(self.algorithm, "server.type")
        self.tracker = StabilityTracker(self.algorithm.settings, self.algorithm.freezable_weights())
        LOGGER.info("Adaptive parameter freezing: %s", self.algorithm.settings.describe())

    def round_mask(self, round_number: int) -> tuple[Mask, dict]:
        """The mask of ``round_number`` (made once, from the checks so far) and its packed form."""
        if round_number not in self.masks:
            mask = self.tracker.mask()
            self.masks[round_number] = (mask, mask_to_response(mask))
            self.frozen_by_round[round_number] = self.tracker.frozen_fraction()
            for old in sorted(self.masks)[:-MASKS_KEPT]:
                del self.masks[old]
        return self.masks[round_number]

    def customize_server_response(self, server_response: dict, client_id) -> dict:
        response = super().customize_server_response(server_response, client_id)
        response[RESPONSE_KEY] = self.round_mask(self.current_round)[1]
        return response

    def weights_received(self, weights_received):
        """Trainers' masked updates as full weights: the global model's values where frozen."""
        weights_received = super().weights_received(weights_received)
        baseline = self.algorithm.extract_weights()
        return [self.algorithm.expand_weights(update, baseline, self._mask_of(update)) for update in weights_received]

    def _mask_of(self, update) -> Mask | None:
        if not isinstance(update, MaskedUpdate):
            return None
        if update.round not in self.masks:
            raise ValueError(
                f"an update masked for round {update.round} arrived in round {self.current_round}, "
                "after that round's mask was dropped"
            )
        return self.masks[update.round][0]

    def weights_aggregated(self, updates) -> None:
        super().weights_aggregated(updates)
        if self.tracker.is_check_round(self.current_round):
            self.tracker.check(self.algorithm.freezable_weights())
        LOGGER.info(
            "[%s] Round %d trained with %.1f%% of the parameters frozen; next round: %.1f%%",
            self,
            self.current_round,
            100 * self.frozen_by_round.get(self.current_round, 0.0),
            100 * self.tracker.frozen_fraction(),
        )

    def extra_metrics(self) -> dict:
        """Adaptive freezing's part of ``metrics.json``."""
        return {
            "algorithm": "adaptive_freezing",
            "frozen_fraction": {str(round_number): fraction for round_number, fraction in self.frozen_by_round.items()},
            "stability_threshold": self.tracker.threshold,
            "settings": asdict(self.algorithm.settings),
        }
