"""Sedna-aware Plato servers (the aggregation worker)."""
