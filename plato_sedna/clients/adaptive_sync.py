"""``clients.type = "adaptive_sync"``: a trainer that runs the local epochs (tau) the aggregator sends.

Plato 1.41 never calls ``Client.process_server_response``; the lifecycle
strategy's hook is what sees the server response, before the payload arrives.
It sets ``trainer.epochs`` to tau, which Plato's trainers read at every
``train()``. The report carries ``local_epochs``, the epochs the trainer
actually ran (from its run history), and ``trainer``, so the aggregator can
record both.
"""

from __future__ import annotations

import logging

from plato.clients import simple
from plato.clients.strategies import DefaultLifecycleStrategy, DefaultTrainingStrategy

from plato_sedna import runtime_config
from plato_sedna.algorithms.adaptive_sync import SYNC_FREQUENCY_KEY
from plato_sedna.algorithms.adaptive_sync_settings import AdaptiveSyncSettings

LOGGER = logging.getLogger(__name__)


def set_local_epochs(epochs: int) -> None:
    """Make ``trainer.epochs`` = ``epochs`` for the next ``train()``."""
    from plato.config import Config

    # ConfigNode._replace returns a new node: it must be assigned back to take effect.
    Config.trainer = Config().trainer._replace(epochs=epochs)


class SyncFrequencyLifecycleStrategy(DefaultLifecycleStrategy):
    """Plato's lifecycle, plus tau from the server response."""

    def __init__(self) -> None:
        super().__init__()
        self.warned = False

    def process_server_response(self, context, server_response) -> None:
        super().process_server_response(context, server_response)
        tau = server_response.get(SYNC_FREQUENCY_KEY)
        if tau is None:
            if not self.warned:
                LOGGER.warning(
                    "[%s] The aggregator sends no sync frequency: training trainer.epochs = %s per round; "
                    "set server.type = adaptive_sync",
                    context,
                    runtime_config.setting("trainer", "epochs"),
                )
                self.warned = True
            return
        set_local_epochs(int(tau))
        LOGGER.info("[%s] Sync frequency from the aggregator: %d local epoch(s) this round", context, int(tau))


class EpochReportingTrainingStrategy(DefaultTrainingStrategy):
    """Plato's training step; the report also says how many epochs were run, and by whom."""

    async def train(self, context):
        report, weights = await super().train(context)
        report.local_epochs = _epochs_run(context.trainer)
        report.trainer = runtime_config.sedna("identity") or f"client-{context.client_id}"
        return report, weights


def _epochs_run(trainer) -> int | None:
    """One train_loss entry per finished epoch, reset at each ``train()``; None for trainers without one."""
    history = getattr(trainer, "run_history", None)
    try:
        return len(history.get_metric_values("train_loss")) or None
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


class Client(simple.Client):
    """Plato's simple client that takes its local epochs from the aggregator every round."""

    def __init__(self, model=None, datasource=None, algorithm=None, trainer=None, callbacks=None, trainer_callbacks=None):
        super().__init__(model, datasource, algorithm, trainer, callbacks, trainer_callbacks)
        # The simple client's payload, reporting and communication strategies stay.
        self._configure_composable(
            lifecycle_strategy=SyncFrequencyLifecycleStrategy(),
            payload_strategy=self.payload_strategy,
            training_strategy=EpochReportingTrainingStrategy(),
            reporting_strategy=self.reporting_strategy,
            communication_strategy=self.communication_strategy,
        )

    def configure(self) -> None:
        super().configure()
        AdaptiveSyncSettings.from_config()  # a bad [algorithm] value stops the trainer at start too


def client(model=None, datasource=None, algorithm=None, trainer=None, callbacks=None, trainer_callbacks=None, **_):
    """The ``registered_clients`` factory (Plato's registry holds factories, not classes)."""
    return Client(model, datasource, algorithm, trainer, callbacks, trainer_callbacks)
