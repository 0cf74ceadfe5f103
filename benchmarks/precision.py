"""Training precision (``train_precision:``, raygen/engine/precision.py) side by side in one run::

    python -m benchmarks.precision [--device cpu|cuda] [--precisions fp32 bf16] [--epochs 10] [--seeds 3] [--threads 1]

(a) seconds per epoch of the Table 3 VAE (``benchmarks.table3``) in each precision, the best of
three epochs after a warm-up one, and the speed-up over fp32;
(b) the same VAE trained ``--epochs`` epochs per seed in each precision, then scored by the
domain classifier's FID (``cls_fid``; 2,000 samples): each precision's mean and its seeds'
spread, so a precision's score can be read against fp32's seed-to-seed spread.
(c) a plain ``matmul`` of the VAE's widest layer's size in each precision: what the device's
arithmetic allows beside what a training step gets.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks.table3 import LABEL, vae_config
from raygen.engine import precision
from raygen.engine.trial import Trial


def epoch_seconds(p: str, device: str, data_root: str | None) -> float:
    trial = Trial(vae_config(epochs=1000, train_precision=p), device=device, data_root=data_root)
    trial.train_epoch()  # warm-up: first-call costs (oneDNN's kernel choice, allocations)
    return min(trial.train_epoch()["epoch_time_s"] for _ in range(3))


def scores(p: str, device: str, data_root: str | None, epochs: int, seeds: int) -> list[float]:
    out = []
    for seed in range(seeds):
        cfg = vae_config(epochs=epochs, train_precision=p, seed=seed, eval_samples=2000)
        result = Trial(cfg, device=device, data_root=data_root).fit()
        out.append(float(result["cls_fid"]))
        print(f"    {p} seed {seed}: cls_fid {out[-1]:.2f} ({result['health']})", flush=True)
    return out


def matmul_gflops(p: str, device: str) -> float:
    dtype = torch.bfloat16 if p == "bf16" else torch.float32
    a = torch.randn(100, 2000, device=device, dtype=dtype)
    b = torch.randn(2000, 2000, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    n, t0 = 50, time.perf_counter()
    for _ in range(n):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * 100 * 2000 * 2000 * n / (time.perf_counter() - t0) / 1e9


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=precision.PRECISIONS)
    ap.add_argument("--epochs", type=int, default=10, help="epochs per scored trial (b); 0 skips (b)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    for p in args.precisions:
        precision.check(p, device)
    print(f"{LABEL}; device {args.device}, {torch.get_num_threads()} thread(s), torch {torch.__version__}", flush=True)
    secs = {p: epoch_seconds(p, args.device, args.data_root) for p in args.precisions}
    for p, s in secs.items():
        print(f"(a) {p}: {s:.3f} s per epoch, {secs[args.precisions[0]] / s:.2f}x {args.precisions[0]}", flush=True)
    for p in args.precisions:
        print(f"(c) {p}: matmul 100x2000 @ 2000x2000 {matmul_gflops(p, args.device):.0f} GFLOP/s", flush=True)
    if args.epochs:
        for p in args.precisions:
            got = scores(p, args.device, args.data_root, args.epochs, args.seeds)
            spread = f"{statistics.stdev(got):.2f}" if len(got) > 1 else "n/a (one seed)"
            print(f"(b) {p}, {args.epochs} epochs x {args.seeds} seeds: cls_fid mean {statistics.mean(got):.2f}, "
                  f"seed-to-seed sd {spread}, range {min(got):.2f} to {max(got):.2f}", flush=True)


if __name__ == "__main__":
    main()
