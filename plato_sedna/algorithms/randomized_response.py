"""MistNet's local privacy on the edge: binarise activations, then randomized response per bit."""

from __future__ import annotations

import torch


def binarize(activations: torch.Tensor) -> torch.Tensor:
    """1 where an activation is positive, else 0 (the paper's Eq. 1), as booleans."""
    return activations > 0


def randomized_response(bits: torch.Tensor, keep_probability: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Keep each bit with ``keep_probability`` (p), flip it otherwise (q = 1 - p), independently.

    ``bits`` is a boolean tensor; the result is boolean, on the CPU, drawn from
    ``generator`` (a CPU generator; None: torch's global one).
    """
    if not 0.0 <= keep_probability <= 1.0:
        raise ValueError(f"keep_probability {keep_probability} is not a probability")
    bits = bits.to("cpu", torch.bool)
    flips = torch.rand(bits.shape, generator=generator) >= keep_probability
    return bits ^ flips


class Binarize(torch.nn.Module):
    """The cut as the aggregator sees it: a float 0/1 tensor (used to test the split model)."""

    def forward(self, activations: torch.Tensor) -> torch.Tensor:
        return binarize(activations).to(activations.dtype)
