"""GPU figures for ``benchmarks/gpu.sh`` (they need no Ray, which the lent GPU machines lack)::

    python -m benchmarks.gpu table3 [--epochs 30] [--data-root DIR]
    python -m benchmarks.gpu packed [--trials 4] [--epochs 5] [--data-root DIR]

``--device cpu --max-batches 2 --eval-samples 200``: the same code at toy sizes on a CPU
(``gpu.sh --cpu-check``), to find a mistake before a lent GPU's minutes are spent on it.

table3: Ko et al. 2024's Table 3 MNIST column (``raygen/sweeps/gae_table3.yaml``: ten models,
30 epochs, batch 100, on the available split) trained one after another on the GPU, each
with its evaluation; seconds per model and in all, and each model's ``cls_fid``.

packed: N copies of the Table 3 VAE (seeds 0..N-1) as N processes sharing the GPU at once, as
Ray places N trials of ``gpus_per_trial: 1/N``, against the same N one after another; the
throughput ratio (trials per second packed / alone).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor

from benchmarks.table3 import vae_config
from raygen.sweep.spec import load_sweep


def table3_configs(epochs: int, **overrides) -> list[dict]:
    return [{**c, "epochs": epochs, **overrides} for c in load_sweep("gae_table3").grid() if c["dataset"] == "mnist"]


def train(config: dict, data_root: str | None, device: str = "cuda") -> tuple[str, float, float, str]:
    """(model, seconds end to end, cls_fid, health) of one trial on ``device``."""
    from raygen.engine.trial import Trial

    t0 = time.perf_counter()
    result = Trial(config, device=device, data_root=data_root).fit()
    return config["model"], time.perf_counter() - t0, float(result.get("cls_fid", float("nan"))), result.get("health")


def device_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else device


def table3(epochs: int, data_root: str | None, device: str, small: dict) -> None:
    print(f"Table 3 MNIST column on {device_name(device)}: 10 models x {epochs} epochs + evaluation", flush=True)
    train(vae_config(epochs=1, max_batches=5, eval_samples=200), data_root, device)  # warm-up: context, kernels
    t0 = time.perf_counter()
    for config in table3_configs(epochs, **small):
        model, secs, fid, health = train(config, data_root, device)
        print(f"  {model:<9} {secs:7.1f} s  cls_fid {fid:8.2f}  health {health}", flush=True)
    print(f"table3: {time.perf_counter() - t0:.1f} s in all", flush=True)


def packed(n: int, epochs: int, data_root: str | None, device: str, small: dict) -> None:
    configs = [vae_config(epochs=epochs, seed=s, **{"eval_samples": 2000, **small}) for s in range(n)]
    devices, roots = [device] * n, [data_root] * n
    ctx = mp.get_context("spawn")  # CUDA cannot be forked
    with ProcessPoolExecutor(n, mp_context=ctx) as pool:
        list(pool.map(train, [vae_config(epochs=1, max_batches=5, eval_samples=200)] * n, roots, devices))  # warm
        t0 = time.perf_counter()
        for c in configs:
            pool.submit(train, c, data_root, device).result()  # one at a time, on warm workers
        alone = time.perf_counter() - t0
        t0 = time.perf_counter()
        list(pool.map(train, configs, roots, devices))
        together = time.perf_counter() - t0
    print(f"packed: {n} Table 3 VAE trials x {epochs} epochs on {device_name(device)}: one at a time {alone:.1f} s, "
          f"{n} at once {together:.1f} s: throughput {alone / together:.2f}x", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("table3", "packed"))
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--max-batches", type=int, default=0, help="batches per epoch (0: all)")
    ap.add_argument("--eval-samples", type=int, default=0, help="samples each trial's evaluation scores (0: its own)")
    args = ap.parse_args(argv)
    small = {k: v for k, v in (("max_batches", args.max_batches), ("eval_samples", args.eval_samples)) if v}
    if args.what == "table3":
        table3(args.epochs or 30, args.data_root, args.device, small)
    else:
        packed(args.trials, args.epochs or 5, args.data_root, args.device, small)


if __name__ == "__main__":
    main()
