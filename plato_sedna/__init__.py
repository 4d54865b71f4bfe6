"""KubeEdge Sedna backends for Plato: importing this package registers them."""

from plato_sedna.registration import register

__version__ = "0.1.0"
__all__ = ["__version__", "register"]

register()
