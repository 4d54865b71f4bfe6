"""``algorithm.type = "mistnet"``: the split model, the trainer's one-time feature upload, front-only weights.

Used by both sides: a trainer extracts features with the front (frozen, in eval
mode, no gradients) over its whole local set; the aggregator sends only the
front's weights and trains the back (:mod:`plato_sedna.servers.mistnet`).
"""

from __future__ import annotations

import logging
import time
from functools import cached_property

import torch
from plato.algorithms import fedavg

from plato_sedna.algorithms.features import FeatureUpload
from plato_sedna.algorithms.mistnet_settings import MistNetSettings
from plato_sedna.algorithms.model_split import ModelSplit, split_model
from plato_sedna.algorithms.randomized_response import binarize, randomized_response
from plato_sedna.algorithms.yolo_split import YoloSplit

LOGGER = logging.getLogger(__name__)


class Algorithm(fedavg.Algorithm):
    """MistNet for PyTorch models that :func:`split_model` can cut (ultralytics detection models included)."""

    def __init__(self, trainer) -> None:
        super().__init__(trainer)
        self.settings = MistNetSettings.from_config()

    @cached_property
    def split(self) -> ModelSplit | YoloSplit:
        """The model cut at ``algorithm.cut_layer`` (a ConfigError lists the layers when it is not one)."""
        from plato_sedna import runtime_config

        label = runtime_config.setting("trainer", "model_name") or type(self.model).__name__
        if label == "sednaModelResource":
            label = f"the model ({type(self.model).__module__}.{type(self.model).__name__})"
        return split_model(self.model, self.settings.cut_layer, label)

    def front_weights(self) -> dict:
        """The front's part of the model's weights: all a trainer needs from the aggregator."""
        keys = self.split.front_state_keys()
        return {key: value for key, value in self.extract_weights().items() if key in keys}

    def load_weights(self, weights) -> None:
        """Load the whole model's weights or a part of them (the front, as the aggregator sends)."""
        missing, unexpected = self.model.load_state_dict(weights, strict=False)
        if unexpected:
            raise ValueError(f"weights for layers this model lacks: {', '.join(unexpected[:5])}")
        if missing and len(missing) == len(self.model.state_dict()):
            raise ValueError("the weights received name none of this model's layers")

    def extract_features(self, trainset, sampler) -> FeatureUpload:
        """Run the front over ``trainset`` once; binarise, add the noise, pack."""
        from plato_sedna import runtime_config

        batch_size = int(runtime_config.setting("trainer", "batch_size", 32))
        if isinstance(self.split, YoloSplit):
            return self._extract_detection_features(trainset, sampler, batch_size)
        loader = torch.utils.data.DataLoader(trainset, batch_size=batch_size, sampler=_torch_sampler(sampler))
        generator = _generator(self.settings.random_seed, self.client_id)
        keep = self.settings.keep_probability
        front = self.split.front.to(self.trainer.device).eval()
        started = time.perf_counter()
        bits, labels = [], []
        with torch.no_grad():
            for inputs, targets in loader:
                batch = binarize(front(inputs.to(self.trainer.device))).cpu()
                if self.settings.epsilon is not None:
                    batch = randomized_response(batch, keep, generator)
                bits.append(batch)
                labels.append(torch.as_tensor(targets))
        return self._logged(FeatureUpload.from_bits(bits, labels), started)

    def _extract_detection_features(self, trainset, sampler, batch_size: int):
        from pathlib import Path

        from plato_sedna import runtime_config
        from plato_sedna.algorithms import yolo_features

        started = time.perf_counter()
        work_dir = Path(runtime_config.plato_path("base_path")) / "mistnet" / f"client-{self.client_id}"
        upload = yolo_features.extract(
            self.split,
            trainset,
            sampler,
            batch_size=batch_size,
            device=self.trainer.device,
            keep_probability=None if self.settings.epsilon is None else self.settings.keep_probability,
            generator=_generator(self.settings.random_seed, self.client_id),
            work_dir=work_dir,
        )
        return self._logged(upload, started)

    def _logged(self, upload, started: float):
        LOGGER.info(
            "[%s] MistNet features of %d samples (%d bits each, %s) extracted in %.2f s",
            self,
            upload.num_samples,
            upload.bits_per_sample,
            self.settings.describe(self.split.cut_description),
            time.perf_counter() - started,
        )
        return upload


def _torch_sampler(sampler):
    """A torch sampler from Plato's (``get()``), a torch sampler as is, or None."""
    if sampler is not None and hasattr(sampler, "get") and not isinstance(sampler, torch.utils.data.Sampler):
        return sampler.get()
    return sampler


def _generator(seed: int | None, client_id: int) -> torch.Generator:
    generator = torch.Generator()
    if seed is None:
        generator.seed()  # fresh entropy: the aggregator cannot replay the noise
    else:
        generator.manual_seed(seed * 1000 + client_id)
    return generator
