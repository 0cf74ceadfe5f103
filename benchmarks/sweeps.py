"""Where a sweep's time goes, for every sweep in ``sweeps/`` in smoke form, side by side with
per-epoch bookkeeping (the baseline: a Ray report and a checkpoint every epoch) in one run::

    python -m benchmarks.sweeps                      # every sweep, both bookkeepings
    python -m benchmarks.sweeps gae_cosine gan_vs_vae --full gae_cosine

Each sweep runs as ``python -m raygen.sweep NAME --smoke`` (``--full NAME``: at its own
settings) in a fresh process with a fresh local Ray of ``--num-cpus`` CPUs, first with
``--set report_every=1 --set checkpoint_seconds=0``, then as it is. Its results.parquet
gives the figures, per trial: printed per run are the command's wall (Python's and Ray's
start included), the busy time (the trial-seconds of training, sampler fit, evaluation and
images over the slots), the overhead (wall minus busy) and its share, the time inside the
Ray trials beyond those phases (reports, checkpoints, start-up), the slowest trial start-up
on a reused worker and on a worker's first trial, and the checkpoints written to storage
(Ray stages each in its session folder first, so a local disk sees twice the bytes).
Datasets absent here make their trials fail fast (``--skip-missing-data``); their rows still
count.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from raygen.sweep.spec import available, load_sweep

BASELINE = ("--set", "report_every=1", "--set", "checkpoint_seconds=0")
PHASES = ("train_time_s", "sampler_fit_s", "eval_time_s", "images_s")


def total(df: pd.DataFrame, col: str) -> float:
    return float(pd.to_numeric(df[col], errors="coerce").fillna(0).sum()) if col in df else 0.0


def figures(df: pd.DataFrame, wall_s: float, max_slots: int) -> dict:
    """The run's times and bookkeeping from its rows. A stack's members share one Ray trial:
    their phases add up to its time, which each of their rows repeats."""
    stacked = df["stack_id"].notna() if "stack_id" in df else pd.Series(False, df.index)
    ray_trials = pd.concat([df[~stacked], df[stacked].drop_duplicates("stack_id")])
    slots = max(1, min(max_slots, len(ray_trials)))
    busy = sum(total(df, c) for c in PHASES)
    overhead = max(wall_s - busy / slots, 0.0)
    first = df["first_on_worker"].fillna(False).astype(bool) if "first_on_worker" in df else pd.Series(False, df.index)
    start = pd.to_numeric(df.get("startup_s"), errors="coerce")
    return {"trials": len(df), "wall_s": wall_s, "busy_s": busy / slots, "overhead_s": overhead,
            "overhead_pct": round(100 * overhead / max(wall_s, 1e-9)),
            "in_trial_s": max(total(ray_trials, "wall_time_s") - busy, 0.0),
            "startup_reused_max_s": float(start[~first].max()) if (~first).any() else None,
            "startup_first_max_s": float(start[first].max()) if first.any() else None,
            "checkpoints": int(total(df, "checkpoints")), "checkpoint_mb": total(df, "checkpoint_mb"),
            "completed": int((df["status"] == "completed").sum())}


def run_one(name: str, storage: Path, data_root: str | None, smoke: bool, extra: tuple[str, ...],
            num_cpus: int) -> dict:
    cmd = [sys.executable, "-m", "raygen.sweep", name, "--no-report", "--storage", str(storage),
           "--skip-missing-data", "--num-cpus", str(num_cpus), *(["--smoke"] if smoke else []),
           *(["--data-root", data_root] if data_root else []), *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    runs = list((storage / name).glob("*/results.parquet"))  # beside it: caches the sweep's trials share
    if len(runs) != 1:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}, {len(runs)} results files: {last[:200]}"}
    sweep = load_sweep(name)  # slots as the sweep's console counts them
    slots = int(num_cpus // max(sweep.resources["cpus_per_trial"], 1e-9))
    return figures(pd.read_parquet(runs[0]), wall, min(slots, sweep.max_concurrent or slots))


def fmt(v, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return f"{v:.1f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sweeps", description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help="sweeps (default: every sweep in sweeps/)")
    p.add_argument("--full", action="append", default=[], metavar="NAME",
                   help="run this sweep at its own settings instead of --smoke")
    p.add_argument("--data-root", help="dataset folder (as for raygen.sweep)")
    p.add_argument("--no-baseline", action="store_true", help="skip the per-epoch bookkeeping runs")
    p.add_argument("--num-cpus", type=int, default=os.cpu_count() or 1, help="the local Ray's CPUs")
    args = p.parse_args(argv)
    names = args.names or list(available())
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"error: no sweep named {', '.join(unknown)}; see python -m raygen.sweep --list", file=sys.stderr)
        return 2
    modes = ([("per-epoch", BASELINE)] if not args.no_baseline else []) + [("by the clock", ())]
    head = (f"{'sweep':<18} {'bookkeeping':<13} {'trials':>6} {'wall s':>7} {'busy s':>7} {'overhead':>13} "
            f"{'in trials s':>11} {'start-up reused/first s':>23} {'ckpts':>6} {'ckpt MB':>8}")
    print(head, flush=True)
    rows = []
    for name in names:
        for label, extra in modes:
            with tempfile.TemporaryDirectory(prefix="raygen-bench-") as tmp:
                r = run_one(name, Path(tmp), args.data_root, name not in args.full, extra, args.num_cpus)
            rows.append({"sweep": name, "bookkeeping": label, **r})
            if "error" in r:
                print(f"{name:<18} {label:<13} {r['error']}", flush=True)
                continue
            print(f"{name:<18} {label:<13} {r['trials']:>6} {r['wall_s']:>7.1f} {r['busy_s']:>7.1f} "
                  f"{r['overhead_s']:>7.1f} ({r['overhead_pct']:>2}%) {r['in_trial_s']:>11.1f} "
                  f"{fmt(r['startup_reused_max_s']):>11} / {fmt(r['startup_first_max_s']):<9} "
                  f"{r['checkpoints']:>6} {r['checkpoint_mb']:>8.1f}", flush=True)
    ok = [r for r in rows if "error" not in r]
    for label, _ in modes:
        mb = sum(r["checkpoint_mb"] for r in ok if r["bookkeeping"] == label)
        print(f"all sweeps, {label}: checkpoints {mb:.0f} MB written to storage")
    return 0


if __name__ == "__main__":
    sys.exit(main())
