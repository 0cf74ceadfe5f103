"""Stacked vs one-after-another training, side by side in one run::

    python -m benchmarks.stacking [--epochs 2000] [--device cpu|cuda] [--k 4 8] [--batches 20] [--threads N]

(a) the cosine experiment (sweeps/gae_cosine.yaml: vae_mlp and gae x seeds 0..4): its ten
trials trained one after another as Trials vs as two StackedTrials of five; training
seconds (``train_time_s``, evaluation excluded) and the speed-up. Then the steps without any
epoch bookkeeping: one training step of a model alone against one step of its stack of five
(the same batch; no batch order, results or history): what the batched step itself gains.
(b) the Table 3 VAE (``benchmarks.table3``: mlp 500-500-2000, latent 10, batch 100, MNIST): seconds for ``--batches``
steps of K trials one after another vs stacked, for each K.
Each stacked figure twice: through batched layers (raygen.engine.batched, what a stack of
fully connected networks uses) and through vmap (the general path, the previous one).
"""
from __future__ import annotations

import argparse
import time

import torch

from benchmarks.table3 import vae_config
from raygen.engine.stacking import StackedTrial
from raygen.engine.trial import Trial
from raygen.sweep.spec import load_sweep


def cosine_configs(epochs: int) -> list[list[dict]]:
    """The cosine sweep's trials (epochs set to ``epochs``), grouped by what can share a stack."""
    groups: dict[str, list[dict]] = {}
    for c in load_sweep("gae_cosine").grid(overrides={"epochs": epochs}):
        groups.setdefault(c["model"], []).append(c)
    return list(groups.values())


def cosine(epochs: int, device: str) -> None:
    groups = cosine_configs(epochs)
    alone = 0.0
    for configs in groups:
        for c in configs:
            alone += Trial(c, device=device).fit()["train_time_s"]
    n = sum(len(g) for g in groups)
    for how, vmap in (("batched layers", False), ("vmap", True)):
        stacked = 0.0
        for configs in groups:
            last = StackedTrial(configs, device=device, vmap=vmap).fit()
            stacked += sum(r["train_time_s"] for r in last)  # each member's share: the sum is the stack's time
        print(f"(a) cosine, {n} trials x {epochs} epochs on {device}: one after another {alone:.2f} s, "
              f"stacked ({' + '.join(str(len(g)) for g in groups)}, {how}) {stacked:.2f} s, "
              f"speed-up {alone / stacked:.2f}x", flush=True)


def cosine_steps(device: str, steps: int = 500) -> None:
    """Seconds per bare step, alone and stacked: the epoch bookkeeping left out."""
    def per_step(step, *args) -> float:
        for _ in range(50):
            step(*args)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()  # the warm-up's kernels finish outside the timing
        t0 = time.perf_counter()
        for _ in range(steps):
            step(*args)
        if device == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / steps

    for configs in cosine_configs(10**6):
        one = Trial(configs[0], device=device)
        x, y = one.data.train.x, one.data.train.y
        alone = per_step(one.model.train_step, x, y, one.opts)
        stack = StackedTrial(configs, device=device)
        xs, ys = x.expand(len(configs), *x.shape), y.expand(len(configs), *y.shape)
        stacked = per_step(stack._step, xs, ys)
        k = len(configs)
        print(f"(a) cosine {configs[0]['model']}, bare steps on {device}: one alone {alone * 1e3:.3f} ms, {k} stacked "
              f"{stacked * 1e3:.3f} ms ({stacked / alone:.2f}x one's time): speed-up {k * alone / stacked:.2f}x",
              flush=True)


def table3(ks: list[int], batches: int, device: str, data_root: str | None) -> None:
    cfg = vae_config(max_batches=batches, epochs=1000)  # no end-of-training evaluation
    one = Trial(cfg, device=device, data_root=data_root)
    one.train_epoch()  # warm-up (first-call costs)
    per_trial = min(one.train_epoch()["epoch_time_s"] for _ in range(2))
    for k in ks:
        for how, vmap in (("batched layers", False), ("vmap", True)):
            stack = StackedTrial([{**cfg, "seed": s} for s in range(k)], device=device, data_root=data_root, vmap=vmap)
            stack.train_epoch()  # warm-up
            t0 = time.perf_counter()
            stack.train_epoch()
            stacked = time.perf_counter() - t0
            print(f"(b) Table 3 VAE, {batches} batches of 100 on {device}: K={k} one after another "
                  f"{k * per_trial:.2f} s, stacked ({how}) {stacked:.2f} s, speed-up {k * per_trial / stacked:.2f}x",
                  flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2000, help="cosine epochs per trial (the sweep's: 2000)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--k", type=int, nargs="+", default=[4, 8], help="Table 3 stack sizes")
    p.add_argument("--batches", type=int, default=20, help="Table 3 batches timed per trial")
    p.add_argument("--data-root", default=None)
    p.add_argument("--skip", choices=("cosine", "table3"), default=None)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.device == "cpu":
        print(f"torch threads: {torch.get_num_threads()}", flush=True)
    if a.skip != "cosine":
        cosine(a.epochs, a.device)
        cosine_steps(a.device)
    if a.skip != "table3":
        table3(a.k, a.batches, a.device, a.data_root)


if __name__ == "__main__":
    main()
