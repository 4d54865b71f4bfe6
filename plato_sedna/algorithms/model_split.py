"""A model cut into a front (runs on the edge) and a back (trained by the aggregator).

A model's layers, in the order its forward pass runs them, are taken from:
- ``model.layers`` (names) with ``model.layerdict`` (name -> callable), as Plato's
  split-ready models such as lenet5 list them (non-module steps like a flatten
  method included);
- otherwise its direct children in registration order: ``nn.Sequential``
  (names ``0``, ``1``, ...) and any model whose forward applies its children one
  after another.
A model whose forward routes between layers (ultralytics' YOLO: each module's
``f`` says which earlier outputs it reads) is cut by :mod:`plato_sedna.algorithms.yolo_split`
instead, at a module index (exclusive there: see that module).

The front and back share the model's modules: training the back trains the model.
Cutting also makes the model's own forward binarise at the cut (a forward hook on
the cut layer when it is a module, e.g. lenet5's relu3), as the back was trained: an
in-memory or pickled model (and an ONNX export) infers like the aggregator tested.
A state dict (``.pth``, ``.safetensors``) holds no hooks: after loading one, call
``split_model(model, cut_layer)`` again to get the same forward.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from plato_sedna.algorithms.randomized_response import binarize
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


class CutOutputBinarizer:
    """A forward hook making the cut layer's output 0/1 (1 where > 0), as the features were."""

    def __call__(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        return binarize(output).to(output.dtype)


def _binarize_output(model: nn.Module, step: Callable) -> None:
    """Hook ``step`` (the cut layer) so the model's forward binarises there, replacing an earlier cut's hook."""
    for module in model.modules():
        for key, hook in list(module._forward_hooks.items()):
            if isinstance(hook, CutOutputBinarizer):
                del module._forward_hooks[key]
    if isinstance(step, nn.Module):
        step.register_forward_hook(CutOutputBinarizer())


@dataclass(frozen=True)
class ModelSplit:
    """The front and back of ``model`` cut after layer ``cut_name``."""

    model: nn.Module
    cut_name: str
    front: LayerChain
    back: LayerChain

    @property
    def cut_description(self) -> str:
        return f"cut after layer {self.cut_name!r}"

    def front_state_keys(self) -> frozenset[str]:
        """The keys of ``model.state_dict()`` that belong to the front."""
        prefixes = {
            name for name, module in self.model.named_modules() if name and any(module is b for b in self.front.blocks)
        }
        return frozenset(
            key for key in self.model.state_dict() if any(key.startswith(prefix + ".") for prefix in prefixes)
        )


def split_model(model: nn.Module, cut_layer: str | int | None, model_label: str | None = None):
    """Cut ``model`` after ``cut_layer`` (a layer name, or an index into its layers).

    An ultralytics model is cut before module ``cut_layer`` instead (a YoloSplit).
    Raises ConfigError, listing the model's layers, when the cut is not one of them
    or leaves nothing for the aggregator to train.
    """
    from plato_sedna.algorithms import yolo_split

    label = model_label or type(model).__name__
    if yolo_split.is_routed(model):
        return yolo_split.split(model, cut_layer, label)
    layers = named_layers(model)
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
    _binarize_output(model, layers[index][1])
    return ModelSplit(model, names[index], LayerChain(layers[: index + 1]), LayerChain(layers[index + 1 :]))


def _index_of(cut_layer: str | int, names: list[str]) -> int | None:
    if isinstance(cut_layer, int):
        return cut_layer if 0 <= cut_layer < len(names) else None
    return names.index(cut_layer) if cut_layer in names else None
