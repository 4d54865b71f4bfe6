"""``clients.type = "mistnet"``: a trainer that uploads its features once instead of training.

It loads the front's weights the aggregator sends, runs the frozen front over
its whole local set, binarises and perturbs the activations (see
:mod:`plato_sedna.algorithms.mistnet`) and sends them with the labels. Its report
carries ``payload_bytes`` and ``trainer`` so the aggregator can record the bytes
each trainer uploaded.
"""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

from plato.clients import simple
from plato.clients.strategies import (
    DefaultCommunicationStrategy,
    DefaultLifecycleStrategy,
    DefaultPayloadStrategy,
    DefaultReportingStrategy,
    DefaultTrainingStrategy,
)

from plato_sedna import runtime_config
from plato_sedna.algorithms import mistnet

LOGGER = logging.getLogger(__name__)


class FeatureUploadStrategy(DefaultTrainingStrategy):
    """Training, MistNet's way: extract features with the frozen front, once."""

    async def train(self, context):
        from plato_sedna.algorithms.features import TrainerUpload

        started = time.perf_counter()
        algorithm = context.algorithm
        held_out = None
        if runtime_config.setting("clients", "do_test", False) and context.testset is not None:
            # The aggregator has no test set: it tests on these (noised like the rest).
            held_out = algorithm.extract_features(context.testset, context.testset_sampler)
        upload = TrainerUpload(algorithm.extract_features(context.trainset, context.sampler), held_out)
        payload_bytes = upload.size_bytes()
        trainer = runtime_config.sedna("identity") or f"client-{context.client_id}"
        LOGGER.info("[%s] Uploading %d bytes of MistNet features as %s", context, payload_bytes, trainer)
        report = SimpleNamespace(
            client_id=context.client_id,
            num_samples=upload.train.num_samples,
            accuracy=0,  # the trainer has no back part to test
            training_time=time.perf_counter() - started,
            comm_time=time.time(),
            update_response=False,
            payload_bytes=payload_bytes,
            trainer=trainer,
        )
        return report, upload


class Client(simple.Client):
    """Plato's simple client with the feature upload as its training step."""

    def __init__(self, model=None, datasource=None, algorithm=None, trainer=None, callbacks=None, trainer_callbacks=None):
        super().__init__(model, datasource, algorithm, trainer, callbacks, trainer_callbacks)
        self._configure_composable(
            lifecycle_strategy=DefaultLifecycleStrategy(),
            payload_strategy=DefaultPayloadStrategy(),
            training_strategy=FeatureUploadStrategy(),
            reporting_strategy=DefaultReportingStrategy(),
            communication_strategy=DefaultCommunicationStrategy(),
        )

    def configure(self) -> None:
        super().configure()
        if not isinstance(self.algorithm, mistnet.Algorithm):
            from plato_sedna.errors import ConfigError

            raise ConfigError(
                f"clients.type = mistnet needs algorithm.type = mistnet (the algorithm is {type(self.algorithm).__module__}); "
                "set both, or set aggregation_algorithm=mistnet in the pod env"
            )
        # Cutting now: a cut layer the model lacks stops the trainer before it connects.
        split = self.algorithm.split
        LOGGER.info(
            "MistNet trainer: front %s, %s", "-".join(split.front.layer_names), self.algorithm.settings.describe(split.cut_description)
        )


def client(model=None, datasource=None, algorithm=None, trainer=None, callbacks=None, trainer_callbacks=None, **_):
    """The ``registered_clients`` factory (Plato's registry holds factories, not classes)."""
    return Client(model, datasource, algorithm, trainer, callbacks, trainer_callbacks)
