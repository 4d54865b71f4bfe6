"""Helpers shared by the tests and the benchmarks: offline data and plain Plato configs."""
