"""``clients.type = "adaptive_freezing"``: a trainer that keeps frozen parameters still and uploads the rest.

Each round the aggregator's response carries the mask (which scalars are active);
the trainer loads the global weights, trains, resets the frozen scalars to the
values it received after every optimizer step, and uploads a
:class:`~plato_sedna.algorithms.adaptive_freezing_payload.MaskedUpdate` with the
active scalars only. The mask comes from the aggregator every round, so a
trainer that missed rounds never works from a stale one.
"""

from __future__ import annotations

import logging

from plato.clients import simple
from plato.clients.strategies import (
    DefaultCommunicationStrategy,
    DefaultLifecycleStrategy,
    DefaultPayloadStrategy,
    DefaultReportingStrategy,
    DefaultTrainingStrategy,
)

from plato_sedna.algorithms import adaptive_freezing
from plato_sedna.algorithms.adaptive_freezing_payload import RESPONSE_KEY
from plato_sedna.algorithms.adaptive_freezing_reset import FrozenValuesReset
from plato_sedna.algorithms.adaptive_freezing_state import Mask

LOGGER = logging.getLogger(__name__)


class MaskFromResponse(DefaultLifecycleStrategy):
    """Keeps the round's mask from the aggregator's response until the payload arrives."""

    def process_server_response(self, context, server_response) -> None:
        super().process_server_response(context, server_response)
        context.state[RESPONSE_KEY] = server_response.get(RESPONSE_KEY)


class MaskedTraining(DefaultTrainingStrategy):
    """Training with the frozen scalars held still, and an upload of the active ones."""

    def __init__(self, reset: FrozenValuesReset) -> None:
        super().__init__()
        self.reset = reset
        self.mask: Mask | None = None

    def load_payload(self, context, server_payload) -> None:
        super().load_payload(context, server_payload)
        self.mask = context.algorithm.mask_from_response(context.state.get(RESPONSE_KEY))
        self.reset.hold(context.algorithm.model, self.mask)

    async def train(self, context):
        report, weights = await super().train(context)
        self.reset.restore(context.algorithm.model)  # for trainers that skip step callbacks
        update = context.algorithm.compress_weights(weights, self.mask, context.current_round)
        total = sum(int(active.numel()) for active in self.mask.values())
        sent = sum(int(active.sum()) for active in self.mask.values())
        LOGGER.info(
            "[%s] Uploading %d of %d freezable scalars (%.1f%% frozen this round)",
            context,
            sent,
            total,
            100 * (1 - sent / total) if total else 0.0,
        )
        return report, update


class Client(simple.Client):
    """Plato's simple client with masked training and upload."""

    def __init__(self, model=None, datasource=None, algorithm=None, trainer=None, callbacks=None, trainer_callbacks=None):
        reset = FrozenValuesReset()
        super().__init__(model, datasource, algorithm, trainer, callbacks, [*(trainer_callbacks or []), reset])
        self._configure_composable(
            lifecycle_strategy=MaskFromResponse(),
            payload_strategy=DefaultPayloadStrategy(),
            training_strategy=MaskedTraining(reset),
            reporting_strategy=DefaultReportingStrategy(),
            communication_strategy=DefaultCommunicationStrategy(),
        )

    def configure(self) -> None:
        super().configure()
        adaptive_freezing.require(self.algorithm, "clients.type")
        LOGGER.info("Adaptive freezing trainer: %s", self.algorithm.settings.describe())


def client(model=None, datasource=None, algorithm=None, trainer=None, callbacks=None, trainer_callbacks=None, **_):
    """The ``registered_clients`` factory (Plato's registry holds factories, not classes)."""
    return Client(model, datasource, algorithm, trainer, callbacks, trainer_callbacks)
