"""``python -m benchmarks.optimizers``: training steps per second of a model with PyTorch's
default Adam and with the fused one raygen uses, side by side in one run, on this machine.

Default: Ko et al. 2024's Table 3 VAE (``benchmarks.table3``: fully connected 500-500-2000,
latent 10) on batches of 100 MNIST-shaped images, and the DCGAN of the GAN-vs-VAE comparison.
"""
from __future__ import annotations

import argparse
import time

import torch

from benchmarks.table3 import LABEL, vae_config
from raygen.engine.config import split_config

CASES = {LABEL: vae_config(), "gan_dcgan (batch 128)": {"model": "gan_dcgan", "batch_size": 128}}


def steps_per_s(config: dict, fused: bool, steps: int) -> float:
    torch.manual_seed(0)
    train, cls, cfg = split_config(config)
    batch = train.batch_size
    model = cls(cfg, (1, 28, 28), 10)
    opts = model.configure_optimizers()  # raygen's: fused
    if not fused:  # the same groups and settings in PyTorch's default implementation (foreach on CPU)
        opts = {k: torch.optim.Adam([{k2: v for k2, v in g.items() if k2 not in ("fused", "foreach")}
                                     for g in o.param_groups]) for k, o in opts.items()}
    assert all(bool(o.defaults.get("fused")) == fused for o in opts.values())
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    for _ in range(3):  # warm-up
        model.train_step(x, y, opts)
    t0 = time.perf_counter()
    for _ in range(steps):
        model.train_step(x, y, opts)
    return steps / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.optimizers", description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=1, help="torch threads (a trial's CPUs)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.steps} steps each")
    for label, config in CASES.items():
        slow = steps_per_s(config, fused=False, steps=args.steps)
        fast = steps_per_s(config, fused=True, steps=args.steps)
        print(f"{label}: default Adam {slow:.1f} steps/s, fused Adam {fast:.1f} steps/s ({fast / slow:.2f}x)")


if __name__ == "__main__":
    main()
