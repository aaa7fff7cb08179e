"""Benchmarks: each module prints one JSON object of figures on stdout."""
