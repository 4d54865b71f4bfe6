"""``server.type = "mistnet"``: the aggregator trains the back of the model on the trainers' features.

One round: trainers get the front's weights, each uploads its features once,
the aggregator trains the back on all of them with the job's trainer settings
(``trainer.epochs``, ``batch_size``, ``optimizer``), tests front -> binarise ->
back, and the whole model is published like any other. ``extra_metrics()`` adds
epsilon, the cut layer and each trainer's upload size to ``metrics.json``.
An ultralytics detector's back is trained with ultralytics' loss instead
(:mod:`plato_sedna.algorithms.yolo_back`) and tested with ultralytics' validation
through the model's own forward, which binarises at the cut (the split's hooks);
without a test set it is not tested and reports no accuracy (None, ``tested_on``
"not tested ..."), never 0.0.
"""

from __future__ import annotations

import logging

import torch
from plato.servers import fedavg

from plato_sedna import runtime_config
from plato_sedna.algorithms import mistnet
from plato_sedna.algorithms.features import FeatureSet
from plato_sedna.algorithms.randomized_response import Binarize
from plato_sedna.algorithms.yolo_split import YoloSplit
from plato_sedna.servers.progress import NOT_TESTED

LOGGER = logging.getLogger(__name__)


class Server(fedavg.Server):
    """Plato's FedAvg server with MistNet's single round in place of averaging."""

    def __init__(self, model=None, datasource=None, algorithm=None, trainer=None, callbacks=None, **kwargs) -> None:
        super().__init__(model, datasource, algorithm, trainer, callbacks, **kwargs)
        _run_one_round()
        self.uploaded_bytes: dict[str, int] = {}
        self.tested_on = "nothing yet"

    def init_trainer(self) -> None:
        super().init_trainer()
        if not isinstance(self.algorithm, mistnet.Algorithm):
            from plato_sedna.errors import ConfigError

            raise ConfigError(
                f"server.type = mistnet needs algorithm.type = mistnet (the algorithm is "
                f"{type(self.algorithm).__module__}); set both, or aggregation_algorithm=mistnet in the pod env"
            )
        if pretrained_weights_url() is None:
            LOGGER.warning(
                "MistNet without pretrained weights: the front is randomly initialised, so trainers "
                "extract features with an untrained network. Set the job's spec.pretrainedModel "
                "(PRETRAINED_MODEL_URL) to a Model holding trained weights."
            )
        split = self.algorithm.split  # a cut layer the model lacks stops the aggregator here
        LOGGER.info(
            "MistNet: front %s on the trainers, back %s here; %s",
            "-".join(split.front.layer_names),
            "-".join(split.back.layer_names),
            self.algorithm.settings.describe(split.cut_description),
        )

    def customize_server_payload(self, payload):
        """Trainers need the front only."""
        payload = super().customize_server_payload(payload)
        keys = self.algorithm.split.front_state_keys()
        return {key: value for key, value in payload.items() if key in keys}

    async def _process_reports(self) -> None:
        uploads = [update.payload for update in self.updates]
        for update in self.updates:
            name = getattr(update.report, "trainer", None) or f"client-{update.client_id}"
            self.uploaded_bytes[name] = int(getattr(update.report, "payload_bytes", 0))
        if isinstance(self.algorithm.split, YoloSplit):
            self.accuracy = self._train_and_test_detector(uploads)
        else:
            self.accuracy = self._train_and_test_classifier(uploads)
        if self.accuracy is None:
            LOGGER.info("[%s] MistNet model %s", self, self.tested_on)
        else:
            LOGGER.info("[%s] MistNet model accuracy: %.2f%% (tested on %s)", self, 100 * self.accuracy, self.tested_on)
        self.clients_processed()
        self.callback_handler.call_event("on_clients_processed", self)

    def _train_and_test_classifier(self, uploads) -> float:
        features = FeatureSet([upload.train for upload in uploads])
        split = self.algorithm.split
        LOGGER.info("[%s] Training the back (%s) on %d samples' features", self, "-".join(split.back.layer_names), len(features))
        back_trainer = self._trainer_for(split.back)
        back_trainer.train(features, torch.utils.data.RandomSampler(features))  # reshuffled every epoch
        return self._test(uploads, features)

    def _train_and_test_detector(self, uploads) -> float | None:
        """An ultralytics model: train the back with ultralytics' loss, test with ultralytics' validation."""
        from plato_sedna.algorithms import yolo_back
        from plato_sedna.algorithms.yolo_features import DetectionFeatureSet

        features = DetectionFeatureSet([upload.train for upload in uploads])
        split = self.algorithm.split
        LOGGER.info("[%s] Training the back (modules %d-%d) on %d images' features", self, split.cut, len(split.model.model) - 1, len(features))
        training = yolo_back.BackTraining.from_config(
            {key: runtime_config.setting("trainer", key) for key in ("epochs", "batch_size", "optimizer")},
            runtime_config.table("parameters", "optimizer"),
            runtime_config.setting("server", "random_seed"),
        )
        table = runtime_config.table("parameters", "ultralytics") or {}
        yolo_back.train_back(split, features, training, table, self.trainer.device)
        if self.testset is None:
            self.tested_on = f"{NOT_TESTED} (no test set: set TEST_DATASET_URL on the aggregator)"
            LOGGER.warning("[%s] No test set: the MistNet detector is not evaluated; set TEST_DATASET_URL on the aggregator", self)
            return None  # no accuracy, rather than a 0.0 that reads as a score
        # The model's own forward binarises at the cut (yolo_split's hooks), as the published model does.
        self.tested_on = "the aggregator's test set, through the model's forward (front -> binarise -> back)"
        return self.trainer.test(self.testset, self.testset_sampler)

    def _test(self, uploads, features: FeatureSet) -> float:
        split = self.algorithm.split
        if self.testset is not None:
            self.tested_on = "the aggregator's test set, through front -> binarise -> back"
            model = torch.nn.Sequential(split.front, Binarize(), split.back)
            return self._trainer_for(model).test(self.testset, self.testset_sampler)
        held_out = [upload.held_out for upload in uploads if upload.held_out is not None]
        if held_out and sum(upload.num_samples for upload in held_out):
            self.tested_on = "the trainers' held-out features"
            return self._trainer_for(split.back).test(FeatureSet(held_out))
        self.tested_on = "the training features (no test set: set TEST_DATASET_URL on the aggregator)"
        LOGGER.warning("[%s] No test set and no held-out features: accuracy is measured on the training features", self)
        return self._trainer_for(split.back).test(features)

    @staticmethod
    def _trainer_for(model):
        from plato.trainers import registry

        return registry.get(model=model)

    def extra_metrics(self) -> dict:
        """MistNet's part of ``metrics.json``."""
        settings = self.algorithm.settings
        return {
            "algorithm": "mistnet",
            "cut_layer": self.algorithm.split.cut_name,
            "binarized_at": self.algorithm.split.cut_description,  # inference must binarise there too
            "epsilon": settings.epsilon,
            "keep_probability": settings.keep_probability,
            "uploaded_bytes": dict(self.uploaded_bytes),
            "tested_on": self.tested_on,
        }


def _run_one_round() -> None:
    """MistNet uploads features once: the job is one round, whatever trainer.rounds says."""
    rounds = runtime_config.setting("trainer", "rounds")
    if rounds != 1:
        from plato.config import Config

        LOGGER.info("MistNet runs one round (features are uploaded once); trainer.rounds = %s ignored", rounds)
        Config.trainer.rounds = 1
    stop_condition = runtime_config.setting("server", "stop_condition")
    if stop_condition is not None:
        stop_condition.rounds = 1
        stop_condition.max_rounds = 1


def pretrained_weights_url() -> str | None:
    """Where the model's pretrained weights come from (sednaModelResource), or None."""
    if runtime_config.setting("trainer", "model_name") != "sednaModelResource":
        return None
    from plato_sedna.models.architectures import kind_of
    from plato_sedna.models.sedna_resource import model_settings, pretrained_url

    settings = model_settings(runtime_config.table("parameters", "model") or {})
    return pretrained_url(
        settings,
        kind_of(settings),
        runtime_config.sedna("pretrained_model_url"),
        runtime_config.sedna("model_url"),
    )
