"""``server.type = "sedna_gan"``: Plato's ``fedavg_gan`` server, saying in ``metrics.json`` that "accuracy" is FID.

Plato's GAN server reports the generator's Frechet Inception Distance (lower is
better) where other servers report accuracy; the job's metrics, summary and plot
carry it under that name, so ``metrics.json`` names what the number is.
"""

from __future__ import annotations

from plato.servers import fedavg_gan

ACCURACY_IS = "FID of the generator against the test set (lower is better)"


class Server(fedavg_gan.Server):
    def extra_metrics(self) -> dict:
        return {"algorithm": "fedavg_gan", "accuracy_is": ACCURACY_IS}
