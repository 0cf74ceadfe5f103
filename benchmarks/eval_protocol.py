"""Evaluation against training at Ko et al. 2024's Table 3 protocol, the previous
evaluation (``baseline``) beside the current one: ``python -m benchmarks.evaluation --table3``.

Each measurement runs in its own process, as a Ray worker would: trial A (the engine's
``Trial`` on the sweep's configuration, ``benchmarks.table3``) trains one full epoch and is
evaluated twice (the process's first evaluation, then an ``eval_every`` one), then trial B
(seed 1) trains one epoch and is evaluated (a worker's next trial), with the default cache
(the classifier and reference statistics on disk, as after a sweep's first trial). The two
implementations alternate, so load from other work on the machine falls on both.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import torch

from benchmarks.table3 import LABEL, vae_config
from raygen.engine.trial import Trial

SCORES = ("cls_fid", "cls_is", "kid", "precision", "recall", "cls_fid_recon", "recon_mse", "recon_bce")


def evaluate_with(impl: str, trial: Trial) -> dict:
    """One evaluation of ``trial``'s model by the previous or the current implementation, with
    the same settings for both (the trial's sample count, seed and data)."""
    from benchmarks.reference import baseline
    from raygen.metrics.evaluate import Eval, evaluate

    c = trial.cfg
    kw = {"n": min(c.eval_samples, len(trial.data.eval)), "samples": c.eval_samples, "seed": c.seed,
          "data_root": trial.ctx.data_root}
    if impl == "previous":
        return baseline.old_evaluate(trial.model, trial.data, baseline.OldEval(**kw))
    return evaluate(trial.model, trial.data, Eval(**kw))


def child(impl: str, data_root: str | None) -> dict:
    """One process's figures (run with ``--child``)."""
    out: dict = {"epoch_s": [], "eval_s": [], "epoch_cpu_s": [], "eval_cpu_s": [], "families": [], "scores": {}}
    for seed, evals in ((0, 2), (1, 1)):
        # one epoch of the sweep's 30 is timed (no end-of-training evaluation), as the trial counts it
        trial = Trial(vae_config(seed=seed), data_root=data_root)
        out["train_images"], out["train_split"] = len(trial.data.train), trial.data.train_split
        out["batch_size"] = trial.cfg.batch_size
        cpu = time.process_time()
        out["epoch_s"].append(trial.train_epoch()["epoch_time_s"])
        out["epoch_cpu_s"].append(time.process_time() - cpu)
        for _ in range(evals):
            cpu = time.process_time()
            r = evaluate_with(impl, trial)
            out["eval_cpu_s"].append(time.process_time() - cpu)
            out["eval_s"].append(r["eval_time_s"])
            out["families"].append({k[5:-2]: v for k, v in r.items() if k.startswith("eval_") and k.endswith("_s")
                                    and k != "eval_time_s"})
            out["scores"] = out["scores"] or {k: r.get(k) for k in SCORES}
    return out


def run_child(impl: str, threads: int, data_root: str | None) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.eval_protocol", "--child", impl, "--threads", str(threads)]
    if data_root:
        cmd += ["--data-root", data_root]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table3(threads: int, rounds: int, data_root: str | None) -> None:
    print(f"{LABEL}, 10,000 generated samples, classifier metrics; {threads} torch thread(s) "
          f"(a trial's cpus_per_trial); "
          f"{rounds} process(es) per implementation, alternating", flush=True)
    run_child("current", threads, data_root)  # untimed: the classifier and reference statistics on disk
    runs: dict[str, list[dict]] = {"previous": [], "current": []}
    for _ in range(rounds):
        for impl in runs:
            runs[impl].append(run_child(impl, threads, data_root))
    first = runs["current"][0]
    print(f"training split: {first['train_split']} ({first['train_images']} images, "
          f"{first['train_images'] // first['batch_size']} batches per epoch); medians in seconds", flush=True)
    med = {impl: _medians(rs) for impl, rs in runs.items()}
    rows = [("training epoch", "epoch"), ("evaluation, first in the process", "first"),
            ("evaluation, later (eval_every, next trial)", "later"),
            ("  classifier family, later", "classifier"), ("  reconstruction family, later", "reconstruction"),
            ("  inception family, later", "inception"),
            ("first evaluation / epoch", "first_ratio"), ("later evaluation / epoch", "later_ratio")]
    # CPU seconds of the process as well: other work on a shared machine stretches wall time
    rows += [(f"{label} (CPU s)", f"cpu_{key}") for label, key in rows if key in ("epoch", "first", "later")]
    rows += [("first evaluation / epoch (CPU s)", "cpu_first_ratio"), ("later evaluation / epoch (CPU s)",
                                                                      "cpu_later_ratio")]
    print(f"{'':52}{'previous':>10}{'current':>10}")
    for label, key in rows:
        print(f"{label:52}{med['previous'][key]:10.3f}{med['current'][key]:10.3f}")
    same = all(_close(runs["previous"][0]["scores"][k], r["scores"][k]) for r in runs["current"] for k in SCORES)
    print(f"scores of the previous and current evaluation equal (1e-9 relative): {'yes' if same else 'NO'} "
          f"({', '.join(f'{k} {v:.6g}' for k, v in first['scores'].items() if v is not None)})", flush=True)


def _medians(runs: list[dict]) -> dict:
    out = {}
    for unit in ("", "cpu_"):
        epoch = statistics.median(e for r in runs for e in r[f"epoch_{unit}s"])
        first = statistics.median(r[f"eval_{unit}s"][0] for r in runs)
        later = statistics.median(e for r in runs for e in r[f"eval_{unit}s"][1:])
        out.update({f"{unit}epoch": epoch, f"{unit}first": first, f"{unit}later": later,
                    f"{unit}first_ratio": first / epoch, f"{unit}later_ratio": later / epoch})
    fams = {f: statistics.median(fs[f] for r in runs for fs in r["families"][1:]) for f in runs[0]["families"][0]}
    return {**out, **fams}


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-12)


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--child", choices=("previous", "current"), required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-root")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps(child(args.child, args.data_root)), flush=True)
