"""``algorithm.type = "hf_fedavg"``: FedAvg of what a Hugging Face model exchanges, with its size.

With LoRA adapters (``[parameters.lora]``) a round carries only them (and the task
head); otherwise every weight. Each side logs the bytes a round moves (pickled, as
Plato's transport sends them): the aggregator once, each trainer every round.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping

from plato.algorithms import fedavg

from plato_sedna.trainers.huggingface_lora import (
    exchanged_weights,
    has_lora,
    load_exchanged_weights,
)

LOGGER = logging.getLogger(__name__)


def payload_bytes(weights: Mapping) -> int:
    """The size of ``weights`` as Plato's socket transport sends them."""
    return len(pickle.dumps(dict(weights)))


class Algorithm(fedavg.Algorithm):
    """FedAvg over :func:`exchanged_weights`; logs the bytes each way."""

    def __init__(self, trainer) -> None:
        super().__init__(trainer)
        weights = exchanged_weights(self.model)
        LOGGER.info(
            "hf_fedavg: a round moves %d bytes each way per trainer (%s: %d of %d tensors)",
            payload_bytes(weights),
            "LoRA adapters only" if has_lora(self.model) else "all weights",
            len(weights),
            len(self.model.state_dict()),
        )

    def extract_weights(self, model=None) -> dict:
        weights = exchanged_weights(model or self.model)
        if self._on_trainer():
            LOGGER.info("hf_fedavg: sending %d bytes of weights to the aggregator", payload_bytes(weights))
        return weights

    def load_weights(self, weights) -> None:
        if self._on_trainer():
            LOGGER.info("hf_fedavg: received %d bytes of weights from the aggregator", payload_bytes(weights))
        load_exchanged_weights(self.model, weights)

    def _on_trainer(self) -> bool:
        return bool(getattr(self.trainer, "client_id", 0))
