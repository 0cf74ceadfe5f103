"""Where a local sweep's fixed seconds go, from the command's start to its exit::

    python -m benchmarks.startup [SWEEP ...] [--smoke] [--repeat 2] [--num-cpus 2] [--data-root DIR]
                                 [--baseline DIR ...] [--ray-services N]

Each sweep runs as a user runs it (``uv run python -m raygen.sweep`` in the checkout, a local Ray), its
console read line by line as it comes. Printed per run: the seconds to the sweep's first
line (Python and raygen's imports, the plan, the data check), to its ``raygen: sweep`` line
(Ray's start and the Tuner), to the first trial's first training step (a new worker's start,
its imports, the data, the model: from the trial's result.json), the trials' own seconds
(training, evaluation, images: trial-seconds from results.parquet), the last result to exit
(results written, Ray's shutdown), and the whole command. The fixed cost is the command's
wall less the trials' own busy time spread over the slots. ``--baseline DIR``: a checkout of
other code (``git worktree add DIR REV``) run the same way in the same run, its rows first: in
its own environment, which ``uv run`` builds there from its pyproject and uv.lock.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def run(sweep: str, smoke: bool, num_cpus: int, data_root: str | None, code: str | None = None) -> dict[str, float]:
    """One sweep as its user runs it: ``uv run python -m raygen.sweep`` in the checkout, which
    uses that checkout's own environment (built from its pyproject and uv.lock)."""
    code = code or str(REPO)
    uv = shutil.which("uv")
    python = [uv, "run", "python"] if uv else [sys.executable]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [*python, "-m", "raygen.sweep", sweep, "--no-report", "--storage", tmp,
               "--num-cpus", str(num_cpus), *(["--smoke"] if smoke else []),
               *(["--data-root", os.path.abspath(data_root)] if data_root else [])]
        t0, wall0 = time.perf_counter(), time.time()
        seen: dict[str, float] = {}
        # the checkout's environment, not this one's
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")} if uv else None
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=code, env=env)
        for line in proc.stdout:
            now = time.perf_counter() - t0
            seen.setdefault("first line", now)
            if line.startswith("raygen: sweep"):
                seen["ray up"] = now
            if line.lstrip().startswith("[") and "/" in line.split("]")[0]:
                seen.setdefault("first trial ended", now)
                seen["last trial ended"] = now
        proc.wait()
        seen["exit"] = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
        (results,) = Path(tmp).glob(f"{sweep}/*/results.parquet")
        df = pd.read_parquet(results)
        starts = []  # when each trial's first Ray step began: its first result's time less the step's
        for result_json in Path(tmp).glob(f"{sweep}/*/*/result.json"):
            first = result_json.read_text().splitlines()[:1]
            if first:
                r = json.loads(first[0])
                starts.append(r["timestamp"] - r["time_this_iter_s"] - wall0)
        seen["first step"] = min(starts) if starts else float("nan")
    busy = sum(df[c].fillna(0).sum() for c in ("train_time_s", "eval_time_s", "images_s") if c in df)
    slots = max(1, min(num_cpus, len(df)))
    return {**seen, "trials": len(df), "busy": busy, "slots": slots,
            "fixed": seen["exit"] - busy / slots}


def import_seconds(module: str, after: str = "torch") -> float:
    """Seconds a fresh process takes to import ``module`` once ``after`` is imported."""
    code = (f"import time, {after}; t = time.perf_counter(); import {module}; "
            "print(time.perf_counter() - t)")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


LIFECYCLE = """
import contextlib, os, sys, time
os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"
import ray
from raygen.sweep import tuner
mode = sys.argv[1]
kw = dict(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
if "no prestart" in mode:
    kw["_system_config"] = tuner.NO_PRESTART
lean = tuner.lean_head(False) if "no monitors" in mode else contextlib.nullcontext()
t = time.perf_counter()
with lean:
    ray.init(**kw)
up = time.perf_counter() - t
@ray.remote(num_cpus=1)
class Actor:
    def ok(self):
        return True
t = time.perf_counter()
ray.get(Actor.remote().ok.remote())
actor = time.perf_counter() - t
t = time.perf_counter()
ray.shutdown()
print(up, actor, time.perf_counter() - t)
"""
LEAN_MODES = ("plain ray.init", "no monitors", "no prestart", "no monitors, no prestart (raygen's)")


def ray_lifecycle(repeat: int) -> None:
    """``ray.init``, an actor's first call and ``ray.shutdown`` with and without the services a
    local sweep leaves out (``raygen.sweep.tuner.lean_head``, ``NO_PRESTART``): round-robin, medians."""
    seen: dict[str, list[list[float]]] = {m: [] for m in LEAN_MODES}
    for _ in range(repeat):
        for mode in LEAN_MODES:
            out = subprocess.run([sys.executable, "-c", LIFECYCLE, mode], capture_output=True, text=True, check=True)
            seen[mode].append([float(x) for x in out.stdout.split()[-3:]])
    print(f"{'local Ray, median of ' + str(repeat):<40}{'ray.init':>9}{'1st actor':>10}{'shutdown':>9}{'sum':>6}")
    for mode, runs in seen.items():
        med = [statistics.median(r[i] for r in runs) for i in range(3)]
        print(f"{mode:<40}{med[0]:>9.2f}{med[1]:>10.2f}{med[2]:>9.2f}{sum(med):>6.2f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweeps", nargs="*", help="default: gae_cosine (none with --ray-services alone)")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--baseline", action="append", default=[],
                    help="a checkout of the code to compare against (repeatable; each row named by its folder)")
    ap.add_argument("--ray-services", type=int, metavar="N", default=0,
                    help="also time a local Ray's start, first actor and shutdown with and without the services a "
                         "sweep leaves out, N times each")
    args = ap.parse_args(argv)
    if args.ray_services:
        ray_lifecycle(args.ray_services)
        if not args.sweeps:
            return
    args.sweeps = args.sweeps or ["gae_cosine"]
    # what a worker's first trial paid before raygen.models.optim (torch.optim's hooks import it)
    print(f"import torch._dynamo in a fresh process, after torch: {import_seconds('torch._dynamo'):.2f} s "
          f"(no longer imported by training, stacking or evaluation)", flush=True)
    print(f"import raygen's trainable in a fresh process (torch, Ray Tune, raygen): "
          f"{import_seconds('raygen.sweep.trainable', after='sys'):.2f} s", flush=True)
    cols = ("first line", "ray up", "first step", "first trial ended", "last trial ended", "exit", "after last",
            "busy/slot", "fixed")
    print(f"{'sweep':<32}{'first line':>11}{'ray up':>8}{'1st step':>9}{'1st trial':>10}{'last trial':>11}"
          f"{'exit':>7}{'after last':>11}{'busy/slot':>10}{'fixed':>7}", flush=True)

    def row(name: str, r: dict[str, float]) -> None:
        widths = (11, 8, 9, 10, 11, 7, 11, 10, 7)
        print(f"{name:<32}" + "".join(f"{r.get(c, float('nan')):>{w}.1f}" for c, w in zip(cols, widths)), flush=True)

    checkouts = [(os.path.abspath(b), os.path.basename(os.path.abspath(b))) for b in args.baseline]
    checkouts = [*checkouts, (None, "this code")] if checkouts else [(None, "")]
    for sweep in args.sweeps:
        name = {label: f"{sweep}{' (smoke)' if args.smoke else ''}{f', {label}' if label else ''}"
                for _, label in checkouts}
        seen: dict[str, list[dict[str, float]]] = {label: [] for _, label in checkouts}
        for _ in range(args.repeat):  # round-robin: a drift of the machine's speed spreads over every checkout
            for code, label in checkouts:
                r = run(sweep, args.smoke, args.num_cpus, args.data_root, code)
                r["after last"] = r["exit"] - r.get("last trial ended", r["exit"])
                r["busy/slot"] = r["busy"] / r["slots"]
                seen[label].append(r)
                row(name[label], r)
        if args.repeat > 1:
            print("medians:", flush=True)
            for label, runs in seen.items():
                row(name[label], {c: statistics.median(r.get(c, float("nan")) for r in runs) for c in cols})


if __name__ == "__main__":
    main()
