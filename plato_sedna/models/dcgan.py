"""Plato's DCGAN as one ``nn.Module``, so that it publishes, resumes and loads like any other model.

Plato's ``dcgan.Model`` is a plain object holding a generator and a discriminator:
it has no ``state_dict``, so it could be neither published to ``MODEL_URL`` nor
loaded from a Model. This module holds Plato's own two networks (state dict keys
``generator.*`` and ``discriminator.*``) with the attributes Plato's GAN trainer
and ``fedavg_gan`` algorithm read (``nz``, ``loss_criterion``, ...). Built by
``sednaModelResource`` for ``architecture = "dcgan"``.
"""

from __future__ import annotations

import torch
from torch import nn

ARCHITECTURE = "dcgan"


def _dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: convolutions N(0, 0.02), batch norm scales N(1, 0.02) and zero shifts."""
    name = type(module).__name__
    if "Conv" in name:
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Dcgan(nn.Module):
    """Plato's DCGAN generator and discriminator (3x64x64 images, a 100-d noise vector)."""

    def __init__(self) -> None:
        from plato.models import dcgan

        super().__init__()
        self.generator = dcgan.Generator()
        self.discriminator = dcgan.Discriminator()
        self.loss_criterion = nn.BCELoss()
        self.nz, self.nc, self.ngf, self.ndf = dcgan.nz, dcgan.nc, dcgan.ngf, dcgan.ndf
        self.apply(_dcgan_init)

    def weights_init(self, module: nn.Module) -> None:  # Plato's dcgan.Model API
        _dcgan_init(module)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        """Images the generator makes from ``noise`` (N x nz x 1 x 1), in [-1, 1]."""
        return self.generator(noise)
