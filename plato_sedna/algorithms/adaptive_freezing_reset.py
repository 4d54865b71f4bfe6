"""The trainer's side of freezing: frozen scalars put back to the values received, after every step."""

from __future__ import annotations

import torch
from plato.callbacks.trainer import TrainerCallback

from plato_sedna.algorithms.adaptive_freezing_state import Mask


class FrozenValuesReset(TrainerCallback):
    """After each optimizer step, puts the frozen scalars back to the values the aggregator sent."""

    def __init__(self) -> None:
        self.frozen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # name -> (active mask, values received)

    def hold(self, model: torch.nn.Module, mask: Mask) -> None:
        """Remember the received values of every tensor with a frozen scalar."""
        parameters = dict(model.named_parameters())
        self.frozen = {
            name: (active, parameters[name].detach().clone())
            for name, active in mask.items()
            if not bool(active.all())
        }

    def restore(self, model: torch.nn.Module) -> None:
        parameters = dict(model.named_parameters())
        with torch.no_grad():
            for name, (active, received) in self.frozen.items():
                parameter = parameters[name]
                if received.device != parameter.device:
                    active, received = active.to(parameter.device), received.to(parameter.device)
                    self.frozen[name] = (active, received)
                parameter.copy_(torch.where(active, parameter, received))

    def on_train_step_end(self, trainer, config, batch=None, loss=None, **kwargs):
        self.restore(trainer.model)
