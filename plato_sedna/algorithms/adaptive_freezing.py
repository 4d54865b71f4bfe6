"""``algorithm.type = "adaptive_freezing"``: FedAvg where stable parameters freeze and stay home (APF).

Adaptive Parameter Freezing (Chen et al., ICDCS 2021). The aggregator tracks how
each scalar of the global model moves (:mod:`adaptive_freezing_state`) and sends
every trainer, with its round, a bitmask of the active scalars; the trainer keeps
the frozen ones at the value it received and uploads the active ones only
(:mod:`adaptive_freezing_payload`, :mod:`adaptive_freezing_reset`). Used by both sides, with
:mod:`plato_sedna.clients.adaptive_freezing` and :mod:`plato_sedna.servers.adaptive_freezing`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch
from plato.algorithms import fedavg

from plato_sedna.algorithms import adaptive_freezing_payload as payload
from plato_sedna.algorithms.adaptive_freezing_settings import FreezingSettings
from plato_sedna.algorithms.adaptive_freezing_state import Mask


class Algorithm(fedavg.Algorithm):
    """FedAvg's weight handling plus the mask: which tensors can freeze, compress and expand."""

    def __init__(self, trainer) -> None:
        super().__init__(trainer)
        self.settings = FreezingSettings.from_config()

    def freezable_shapes(self) -> dict[str, torch.Size]:
        return freezable_shapes(self.model)

    def freezable_weights(self, weights: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The freezable part of ``weights`` (default: the model's)."""
        weights = self.extract_weights() if weights is None else weights
        return {name: weights[name] for name in self.freezable_shapes()}

    def mask_from_response(self, message: Mapping | None) -> Mask:
        """The round's mask the aggregator sent with its response."""
        if message is None:
            from plato_sedna.errors import ConfigError

            raise ConfigError(
                "the aggregator sent no freezing mask with this round: it does not run "
                "server.type = adaptive_freezing; give every worker of the job the same algorithm "
                "(aggregation_algorithm=adaptive_freezing in every pod's env)"
            )
        return payload.mask_from_response(message, self.freezable_shapes())

    def compress_weights(self, weights: Mapping[str, torch.Tensor], mask: Mask, round_number: int) -> payload.MaskedUpdate:
        return payload.compress(weights, mask, round_number)

    def expand_weights(self, update, baseline: Mapping[str, torch.Tensor], mask: Mask) -> OrderedDict:
        """Full weights from a :class:`MaskedUpdate` (anything else is taken as full weights already)."""
        if not isinstance(update, payload.MaskedUpdate):
            return update
        return payload.expand(update, baseline, mask)


def freezable_shapes(model: torch.nn.Module) -> dict[str, torch.Size]:
    """``model``'s parameters (floating point), in state_dict order; buffers (BatchNorm statistics) never freeze."""
    parameters = dict(model.named_parameters())
    return {
        name: value.shape
        for name, value in model.state_dict().items()
        if name in parameters and value.is_floating_point()
    }


def require(algorithm, component_key: str) -> None:
    """ConfigError unless ``algorithm`` is this one: ``component_key`` (e.g. ``server.type``) names it too."""
    if not isinstance(algorithm, Algorithm):
        from plato_sedna.errors import ConfigError

        raise ConfigError(
            f"{component_key} = adaptive_freezing needs algorithm.type = adaptive_freezing (the algorithm is "
            f"{type(algorithm).__module__}); set both, or aggregation_algorithm=adaptive_freezing in the pod env"
        )
