"""An ultralytics detection model cut at a module index, for MistNet.

Ultralytics models do not run their modules as a chain: each module's ``f`` names
the earlier outputs it reads (``-1`` the previous one; ``Concat`` and ``Detect``
read several), and ``model.save`` lists the outputs kept for later modules. So a
cut is crossed by every front output a back module reads, not by one tensor.

``cut_layer`` for these models is a **module index, and exclusive**: the trainers
run modules ``0 .. cut_layer - 1`` and the aggregator trains modules ``cut_layer ..
last`` (old Plato's YOLOv5 meaning, so the proposal's ``cut_layer: 4`` keeps it:
the input of module 4). For layer-list models such as lenet5, ``cut_layer`` names
the front's last layer (inclusive), as old Plato's lenet5 did.

The features a trainer uploads are all tensors crossing the cut (module
``cut_layer - 1``'s output and every earlier saved output a back module reads),
each binarised and perturbed. The split also installs a forward pre-hook on each
back module that reads a crossing tensor, binarising that input; so the model's own
forward (its evaluation, and the model published for inference) is front ->
binarise -> back, exactly what the aggregator trained on. The hook is idempotent on
0/1 features and leaves the state dict unchanged; it pickles with the model, so
loading the published ``.pt`` needs ``plato_sedna`` importable (it is where the job ran).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from plato_sedna.algorithms.randomized_response import binarize
from plato_sedna.errors import ConfigError


def is_routed(model: nn.Module) -> bool:
    """Whether ``model`` is an ultralytics model whose modules route by ``f`` (DetectionModel and kin)."""
    layers = getattr(model, "model", None)
    return (
        isinstance(layers, nn.Sequential)
        and isinstance(getattr(model, "save", None), list)
        and len(layers) > 0
        and all(hasattr(m, "f") and hasattr(m, "i") for m in layers)
    )


def _sources(module: nn.Module) -> list[int]:
    """The absolute indices of the outputs ``module`` reads, in the order it reads them."""
    froms = module.f if isinstance(module.f, list) else [module.f]
    return [module.i - 1 if j == -1 else j for j in froms]


class CutBinarizer:
    """A forward pre-hook binarising the inputs a back module reads from the front (1 where > 0).

    positions : the places in the module's input list that come from the front; None
    for a module that reads a single tensor.
    """

    def __init__(self, positions: tuple[int, ...] | None) -> None:
        self.positions = positions

    def __call__(self, module: nn.Module, args: tuple) -> tuple:
        (inputs, *rest) = args
        if self.positions is None:
            return (_binary(inputs), *rest)
        inputs = list(inputs)
        for position in self.positions:
            inputs[position] = _binary(inputs[position])
        return (inputs, *rest)


def _binary(tensor: torch.Tensor) -> torch.Tensor:
    return binarize(tensor).to(tensor.dtype)


class YoloFront(nn.Module):
    """Modules ``0 .. cut - 1``; returns the tensors crossing the cut, in ``crossing`` order."""

    def __init__(self, model: nn.Module, cut: int, crossing: tuple[int, ...]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(list(model.model)[:cut])
        self.crossing = crossing
        self.keep = frozenset(model.save) | frozenset(crossing)
        self.layer_names = [f"{m.i}:{type(m).__name__}" for m in self.blocks]

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs: dict[int, torch.Tensor] = {}
        x = images
        for module in self.blocks:
            x = module(_routed_input(module, x, outputs))
            if module.i in self.keep:
                outputs[module.i] = x
        return tuple(outputs[index] for index in self.crossing)


class YoloBack(nn.Module):
    """Modules ``cut .. last``, fed the crossing tensors; returns what the whole model returns."""

    def __init__(self, model: nn.Module, cut: int, crossing: tuple[int, ...]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(list(model.model)[cut:])
        self.crossing = crossing
        self.save = frozenset(model.save)
        self.layer_names = [f"{m.i}:{type(m).__name__}" for m in self.blocks]

    def forward(self, features: Sequence[torch.Tensor]):
        outputs = dict(zip(self.crossing, features, strict=True))
        x = outputs.get(self.blocks[0].i - 1)
        for module in self.blocks:
            x = module(_routed_input(module, x, outputs))
            if module.i in self.save:
                outputs[module.i] = x
        return x


def _routed_input(module: nn.Module, previous, outputs: dict[int, torch.Tensor]):
    """What ultralytics' ``_predict_once`` hands ``module``: the previous output or the ones ``f`` names."""
    if module.f == -1:
        return previous
    if isinstance(module.f, int):
        return outputs[module.f]
    return [previous if j == -1 else outputs[j] for j in module.f]


@dataclass(frozen=True)
class YoloSplit:
    """``model`` cut before module ``cut``: trainers run the front, the aggregator trains the back."""

    model: nn.Module
    cut: int
    crossing: tuple[int, ...]
    front: YoloFront
    back: YoloBack

    @property
    def cut_name(self) -> int:
        return self.cut

    @property
    def cut_description(self) -> str:
        return (
            f"cut before module {self.cut} ({type(self.model.model[self.cut]).__name__}): trainers run "
            f"modules 0-{self.cut - 1}, {len(self.crossing)} tensor(s) cross the cut (outputs of "
            f"{', '.join(map(str, self.crossing))})"
        )

    def front_state_keys(self) -> frozenset[str]:
        """The keys of ``model.state_dict()`` that belong to the front (``model.<i>.`` for i < cut)."""
        prefixes = tuple(f"model.{index}." for index in range(self.cut))
        return frozenset(key for key in self.model.state_dict() if key.startswith(prefixes))


def module_listing(model: nn.Module) -> str:
    """The cut layers ``model`` allows, as ``index:type`` (module 0 reads the image: no cut before it)."""
    return ", ".join(f"{m.i}:{type(m).__name__}" for m in list(model.model)[1:])


def split(model: nn.Module, cut_layer: str | int | None, label: str) -> YoloSplit:
    """Cut ``model`` before module ``cut_layer`` and install the binarising hooks on the back.

    Raises ConfigError, listing the valid indices with the module types, when
    ``cut_layer`` is not one of them.
    """
    modules = list(model.model)
    convention = (
        f"for an ultralytics model, cut_layer is the index of the first module the aggregator "
        f"trains (exclusive: trainers run modules 0 to cut_layer - 1); use one of {module_listing(model)}"
    )
    if cut_layer is None:
        raise ConfigError(f"algorithm.cut_layer is not set; MistNet cuts {label} at a module index: {convention}")
    if isinstance(cut_layer, bool) or not isinstance(cut_layer, int) or not 1 <= cut_layer < len(modules):
        raise ConfigError(f"algorithm.cut_layer = {cut_layer!r} is not a module index {label} can be cut at; {convention}")
    crossing = sorted({src for m in modules[cut_layer:] for src in _sources(m) if src < cut_layer})
    _install_hooks(modules, cut_layer)
    return YoloSplit(model, cut_layer, tuple(crossing), YoloFront(model, cut_layer, tuple(crossing)),
                     YoloBack(model, cut_layer, tuple(crossing)))


def _install_hooks(modules: list[nn.Module], cut: int) -> None:
    """Binarise every front output a back module reads (replacing hooks of an earlier cut)."""
    for module in modules:
        strip_cut_hooks(module)
    for module in modules[cut:]:
        sources = _sources(module)
        from_front = tuple(k for k, src in enumerate(sources) if src < cut)
        if from_front:
            module.register_forward_pre_hook(CutBinarizer(None if not isinstance(module.f, list) else from_front))


def strip_cut_hooks(model: nn.Module) -> int:
    """Remove the binarising hooks a MistNet split installed (e.g. in a published ``.pt``); how many there were.

    A model loaded to train again (FedAvg, or MistNet at another cut) must not binarise
    at an old cut; a new split installs its own hooks.
    """
    removed = 0
    for module in model.modules():
        for key, hook in list(module._forward_pre_hooks.items()):
            if isinstance(hook, CutBinarizer):
                del module._forward_pre_hooks[key]
                removed += 1
    return removed
