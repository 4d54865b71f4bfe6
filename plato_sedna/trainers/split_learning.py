"""``trainer.type = "sedna_split_learning"``: Plato's split-learning trainer for any model that can be cut.

Plato 1.41's split learning calls ``model.forward_to`` on the trainer and
``model.forward_from`` on the aggregator; only its resnet models define both
(lenet5 lacks ``forward_from``). This trainer gives any model the two, cut at
``parameters.model.cut_layer`` the way MistNet cuts models
(the layers :func:`plato_sedna.algorithms.model_split.named_layers` lists, without
MistNet's binarising), and adds no module to the model: its ``state_dict``, and so
the published model, is unchanged.
"""

from __future__ import annotations

from plato.trainers import split_learning

from plato_sedna import runtime_config
from plato_sedna.errors import ConfigError


def make_splittable(model, cut_layer: str | int | None) -> None:
    """Give ``model`` ``forward_to``/``forward_from``, ``layers`` and ``cut_layer`` where it lacks them.

    Raises ConfigError, listing the model's layers, when ``cut_layer`` is not one of
    them or leaves nothing after it.
    """
    from plato_sedna.algorithms.model_split import LayerChain, named_layers

    if hasattr(model, "forward_from") and getattr(model, "cut_layer", None) is not None:
        return
    layers = named_layers(model)
    names = [name for name, _ in layers]
    index = _cut_index(cut_layer, names)
    if index is None or index >= len(names) - 1:
        listing = ", ".join(f"{position}:{name}" for position, name in enumerate(names))
        raise ConfigError(
            f"split_learning: parameters.model.cut_layer (the cut_layer env) = {cut_layer!r} is not a "
            f"layer of {type(model).__name__} with layers after it; pick one of: {listing}"
        )
    # object.__setattr__: plain attributes, not submodules (nn.Module would register them)
    object.__setattr__(model, "forward_to", LayerChain(layers[: index + 1]))
    object.__setattr__(model, "forward_from", LayerChain(layers[index + 1 :]))
    object.__setattr__(model, "cut_layer", names[index])
    if not isinstance(getattr(model, "layers", None), list):
        object.__setattr__(model, "layers", names)


def _cut_index(cut_layer: str | int | None, names: list[str]) -> int | None:
    if isinstance(cut_layer, int) and not isinstance(cut_layer, bool):
        return cut_layer if 0 <= cut_layer < len(names) else None
    return names.index(cut_layer) if cut_layer in names else None


class Trainer(split_learning.Trainer):
    """Plato's split-learning trainer, with the model made splittable at construction."""

    def __init__(self, model=None, callbacks=None) -> None:
        super().__init__(model=model, callbacks=callbacks)
        model_parameters = runtime_config.table("parameters", "model") or {}
        make_splittable(self.model, model_parameters.get("cut_layer"))
