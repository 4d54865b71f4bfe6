"""Plato algorithms the plugin provides (MistNet), with the pieces they are built from."""
