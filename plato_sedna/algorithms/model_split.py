"""A model cut into a front (runs on the edge) and a back (trained by the aggregator).

A model's layers, in the order its forward pass runs them, are taken from:
- ``model.layers`` (names) with ``model.layerdict`` (name -> callable), as Plato's
  split-ready models such as lenet5 list them (non-module steps like a flatten
  method included);
- otherwise its direct children in registration order: ``nn.Sequential``
  (names ``0``, ``1``, ...) and any model whose forward applies its children one
  after another.
A model whose forward routes between layers (ultralytics' YOLO: each module's
``f`` says which earlier outputs it reads) needs its own adapter; not provided yet.

The front and back share the model's modules: training the back trains the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from plato_sedna.errors import ConfigError

Layer = tuple[str, Callable]


def named_layers(model: nn.Module) -> list[Layer]:
    """The model's layers in forward order, each as (name, callable)."""
    names = getattr(model, "layers", None)
    table = getattr(model, "layerdict", None)
    if isinstance(names, (list, tuple)) and isinstance(table, dict) and names and all(n in table for n in names):
        return [(name, table[name]) for name in names]
    return list(model.named_children())


class LayerChain(nn.Module):
    """Some of a model's layers applied in order; its parameters are the model's own."""

    def __init__(self, layers: Sequence[Layer]) -> None:
        super().__init__()
        self.layer_names = [name for name, _ in layers]
        self.steps = [step for _, step in layers]  # a plain list: bound methods included
        self.blocks = nn.ModuleList(step for step in self.steps if isinstance(step, nn.Module))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            inputs = step(inputs)
        return inputs


@dataclass(frozen=True)
class ModelSplit:
    """The front and back of ``model`` cut after layer ``cut_name``."""

    model: nn.Module
    cut_name: str
    front: LayerChain
    back: LayerChain

    def front_state_keys(self) -> frozenset[str]:
        """The keys of ``model.state_dict()`` that belong to the front."""
        prefixes = {
            name for name, module in self.model.named_modules() if name and any(module is b for b in self.front.blocks)
        }
        return frozenset(
            key for key in self.model.state_dict() if any(key.startswith(prefix + ".") for prefix in prefixes)
        )


def split_model(model: nn.Module, cut_layer: str | int | None, model_label: str | None = None) -> ModelSplit:
    """Cut ``model`` after ``cut_layer`` (a layer name, or an index into its layers).

    Raises ConfigError, listing the model's layers, when the cut is not one of them
    or leaves nothing for the aggregator to train.
    """
    layers = named_layers(model)
    label = model_label or type(model).__name__
    names = [name for name, _ in layers]
    if len(layers) < 2:
        raise ConfigError(
            f"MistNet cannot split {label}: it exposes {len(layers)} layer(s) (neither `layers` + "
            "`layerdict` as Plato's split-ready models have, nor a sequence of child modules)"
        )
    listing = ", ".join(f"{index}:{name}" for index, name in enumerate(names))
    if cut_layer is None:
        raise ConfigError(f"algorithm.cut_layer is not set; MistNet needs one of {label}'s layers: {listing}")
    index = _index_of(cut_layer, names)
    if index is None:
        raise ConfigError(f"algorithm.cut_layer = {cut_layer!r} is not a layer of {label}; its layers are: {listing}")
    if index == len(layers) - 1:
        raise ConfigError(
            f"algorithm.cut_layer = {cut_layer!r} is {label}'s last layer: nothing would be left for the "
            f"aggregator to train; cut earlier: {listing}"
        )
    return ModelSplit(model, names[index], LayerChain(layers[: index + 1]), LayerChain(layers[index + 1 :]))


def _index_of(cut_layer: str | int, names: list[str]) -> int | None:
    if isinstance(cut_layer, int):
        return cut_layer if 0 <= cut_layer < len(names) else None
    return names.index(cut_layer) if cut_layer in names else None
