"""Helpers for the model tests: settings from config values, building, randomizing, comparing."""

from __future__ import annotations


def settings(**values):
    """ModelSettings from ``[parameters.model]``-style values only."""
    from plato_sedna.models.settings import resolve_settings

    return resolve_settings(values)


def build(**values):
    from plato_sedna.models.architectures import build as build_architecture

    return build_architecture(settings(**values))


def randomized(model):
    """``model`` with every float tensor refilled, so a round trip cannot pass by luck."""
    import torch

    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
    return model


def assert_same_state(first, second) -> None:
    """Same keys and bit-identical tensors."""
    import torch

    one, two = first.state_dict(), second.state_dict()
    assert list(one) == list(two)
    for key in one:
        assert torch.equal(one[key], two[key]), key
