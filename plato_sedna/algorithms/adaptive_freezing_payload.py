"""What adaptive freezing puts on the wire: the mask as a bitmask, and updates holding active values only."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from plato_sedna.algorithms.adaptive_freezing_state import Mask

# The server response's key for the round's mask (a dict of plain values: socket.io sends it as is).
RESPONSE_KEY = "adaptive_freezing_mask"


def mask_to_response(mask: Mask) -> dict:
    """The mask as 1 bit per scalar, in the mask's key order (the model's state_dict order)."""
    flat = torch.cat([active.reshape(-1) for active in mask.values()]) if mask else torch.zeros(0, dtype=torch.bool)
    return {"entries": int(flat.numel()), "bits": np.packbits(flat.numpy()).tobytes()}


def mask_from_response(message: Mapping, shapes: Mapping[str, torch.Size]) -> Mask:
    """The mask of :func:`mask_to_response`, cut into ``shapes`` (the receiving model's parameters)."""
    expected = sum(int(np.prod(shape)) for shape in shapes.values())
    if message.get("entries") != expected:
        raise ValueError(
            f"the aggregator's freezing mask covers {message.get('entries')} scalars but this model has "
            f"{expected}; every worker of the job must run the same model"
        )
    bits = np.unpackbits(np.frombuffer(message["bits"], dtype=np.uint8), count=expected).astype(bool)
    flat = torch.from_numpy(bits)
    mask, start = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        mask[name] = flat[start : start + size].reshape(shape)
        start += size
    return mask


@dataclass(frozen=True)
class MaskedUpdate:
    """A trainer's update under a mask: the active scalars of each masked tensor, other tensors whole.

    round : int
        The round whose mask was applied (the aggregator expands with that mask).
    active_values : dict[str, torch.Tensor]
        Per masked tensor, its active scalars in row-major order (1-D).
    whole : dict[str, torch.Tensor]
        Tensors never frozen (e.g. BatchNorm's running statistics), as they are.
    """

    round: int
    active_values: dict[str, torch.Tensor]
    whole: dict[str, torch.Tensor]

    def scalars_sent(self) -> int:
        return sum(value.numel() for value in (*self.active_values.values(), *self.whole.values()))


def compress(weights: Mapping[str, torch.Tensor], mask: Mask, round_number: int) -> MaskedUpdate:
    """Keep only the active scalars of the masked tensors of ``weights``."""
    active_values = {name: weights[name].reshape(-1)[mask[name].reshape(-1)].clone() for name in mask}
    whole = {name: value for name, value in weights.items() if name not in mask}
    return MaskedUpdate(round_number, active_values, whole)


def expand(update: MaskedUpdate, baseline: Mapping[str, torch.Tensor], mask: Mask) -> OrderedDict:
    """Full weights: the update's active scalars, the baseline's everywhere else (frozen: no change)."""
    weights = OrderedDict()
    for name, base in baseline.items():
        if name in update.whole:
            weights[name] = update.whole[name]
        elif name in update.active_values:
            flat = base.detach().clone().reshape(-1)
            flat[mask[name].reshape(-1)] = update.active_values[name].to(flat.dtype)
            weights[name] = flat.reshape(base.shape)
        else:
            raise ValueError(f"a trainer's update lacks {name!r}; every worker of the job must run the same model")
    return weights
