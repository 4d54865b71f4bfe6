"""Plato trainers the plugin registers (``trainer.type``)."""
