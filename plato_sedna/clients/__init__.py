"""Sedna-aware Plato clients (the training workers)."""
