"""``plato-sedna render`` and ``plato-sedna validate``: manifests from a config, and checks before applying."""
