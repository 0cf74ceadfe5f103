"""Benchmarks: each prints its figures beside its baseline in one run (``python -m
benchmarks.NAME --help``); their figures and commands are in ``benchmarks/README.md``."""
