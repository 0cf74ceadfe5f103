"""Wall time against CPU-seconds: one trial alone, then the same trial beside another that
shares the machine, side by side in one run.

    python -m benchmarks.fair_timing --data-root DIR [--epochs 3] [--threads 1]

Wall time stretches when trials share cores; a trial's CPU-seconds (``train_cpu_s``: every
thread of its process) should not, or much less: that is why raygen compares times as
CPU-seconds where trials ran side by side. Each trial runs in its own process with
``--threads`` torch threads, on Ko et al. 2024's Table 3 VAE (benchmarks/table3.py).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

from benchmarks.table3 import vae_config


def child(data_root: str, epochs: int, threads: int) -> None:
    import torch

    from raygen.engine.trial import Trial

    torch.set_num_threads(threads)
    t = Trial(vae_config(epochs=epochs, eval_samples=200), data_root=data_root)
    while t.epoch < epochs:
        t.train_epoch()
    epochs_ = t.history
    print(json.dumps({"wall": sum(e["epoch_time_s"] for e in epochs_), "cpu": sum(e["epoch_cpu_s"] for e in epochs_),
                      "epochs": len(epochs_)}))


def run(data_root: str, epochs: int, threads: int, together: int) -> list[dict]:
    cmd = [sys.executable, "-m", "benchmarks.fair_timing", "--child", "--data-root", data_root,
           "--epochs", str(epochs), "--threads", str(threads)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(together)]
    return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fair_timing", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--together", type=int, default=2, help="trials side by side in the second run (default 2)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        child(a.data_root, a.epochs, a.threads)
        return
    alone = run(a.data_root, a.epochs, a.threads, 1)[0]
    beside = run(a.data_root, a.epochs, a.threads, a.together)
    print(f"Table 3 VAE, {a.epochs} epochs of training, {a.threads} torch thread(s) per trial")
    print(f"{'':<28}{'wall s':>10}{'CPU-s':>10}")
    print(f"{'alone':<28}{alone['wall']:>10.1f}{alone['cpu']:>10.1f}")
    for i, b in enumerate(beside):
        print(f"{f'{a.together} at once (trial {i + 1})':<28}{b['wall']:>10.1f}{b['cpu']:>10.1f}")
    mean = lambda k: sum(b[k] for b in beside) / len(beside)
    ratio = lambda k: mean(k) / alone[k]
    print(f"{a.together} at once / alone: wall {ratio('wall'):.2f}x, CPU-seconds {ratio('cpu'):.2f}x")


if __name__ == "__main__":
    main()
