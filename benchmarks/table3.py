"""Ko et al. 2024's Table 3 VAE, the model several benchmarks time: one definition, read from
the sweep that reproduces the table (raygen/sweeps/gae_table3.yaml)."""
from __future__ import annotations

from typing import Any

from raygen.sweep.spec import load_sweep

LABEL = "Table 3 VAE (Ko et al. 2024: MLP 500-500-2000, latent 10, batch 100, MNIST)"


def vae_config(**overrides: Any) -> dict[str, Any]:
    """The sweep's VAE trial on MNIST (MLP 500-500-2000, ReLU, latent 10, BCE, Adam 1e-3,
    batch 100, 30 epochs, 10,000 generated samples, seed 0) with ``overrides``: a flat
    trial config for ``Trial``."""
    (config,) = (c for c in load_sweep("gae_table3").grid() if c["model"] == "vae" and c["dataset"] == "mnist")
    return {**config, **overrides}
