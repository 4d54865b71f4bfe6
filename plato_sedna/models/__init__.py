"""Models the plugin registers with Plato, and how trained models are published."""
