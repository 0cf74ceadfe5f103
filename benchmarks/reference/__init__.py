"""Frozen earlier implementations that benchmarks and equivalence tests compare against."""
