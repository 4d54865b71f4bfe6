"""Datasources the plugin registers with Plato."""
