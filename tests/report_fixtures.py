"""Hand-made run folders for the report tests: results/history Parquet written exactly as
``raygen.sweep.collect`` writes them, and PNGs made from real MNIST test images."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd
import torch

from raygen.core.storage import write_parquet
from raygen.sweep.collect import run_metadata


def analyze(results, history=None, metric=None):
    """``raygen.report.analysis.analyze`` with the metric declarations a sweep writes."""
    from raygen.record.columns import from_json
    from raygen.report.analysis import analyze as analyze_run

    return analyze_run(results, history, metric, from_json(run_metadata()["columns"]))


def mnist_images(data_root: Path, n: int = 40):
    from raygen.data import load_data

    return load_data("mnist", split="test", root=data_root, download=False).train.x[:n].clone()


def save_grid(images, path: Path, nrow: int = 8) -> str:
    from raygen.models.figures import image_grid

    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(images, path, nrow=nrow)
    return path.name


def write_run(run_dir: Path, rows: list[dict], history: list[dict] | None = None) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = run_metadata()  # the metric declarations, as a sweep writes them
    write_parquet(pd.DataFrame(rows), run_dir / "results.parquet", meta)
    if history is not None:
        write_parquet(pd.DataFrame(history, columns=None if history else ["trial_id", "epoch"]),
                      run_dir / "history.parquet", meta)
    return run_dir


def base_row(i: int, **kw) -> dict:
    row = {"sweep": "handmade", "run": "20250102-030405", "trial_id": f"t{i:03d}", "status": "completed",
           "error": None, "model": "vae_mlp", "dataset": "mnist", "seed": 0, "epochs": 2, "lr": 2e-4,
           "train_time_s": 10.0 + i, "eval_time_s": 1.0, "wall_time_s": 12.0 + i, "num_params": 1_000_000,
           "hostname": "node-a", "node_ip": "10.0.0.1", "eval_split": "test", "train_split": "train",
           "metric_errors": None, "trial_dir": f"trial_{i}"}
    row.update(kw)
    return row


def savae_run(run_dir: Path, data_root: Path, betas=(0.0, 0.001, 0.005, 0.1), gammas=(0.0, 0.1),
              latents=(2, 100), seeds=(0, 1)) -> Path:
    """A SAVAE-like β × γ × latent × seed grid (Zemouri 2020 Figure 9): every trial
    reconstructs the same 40 real test images (2 rows of 20, as raygen.models.savae saves
    them); the reconstruction gets noisier with |β - 0.005| so the best setting is
    β = 0.005, γ = 0.1 for every latent size, and β = 0.1, γ = 0, latent 2, seed 0
    diverged (so its cell must say so)."""
    x = mnist_images(data_root)
    rows, hist = [], []
    gen = torch.Generator().manual_seed(0)
    for i, (b, g, k, s) in enumerate(itertools.product(betas, gammas, latents, seeds)):
        err = 0.02 + abs(b - 0.005) + (0.0 if g else 0.01) + (0.0 if k == 100 else 0.005) + 0.001 * s
        trial = run_dir / f"trial_{i}"
        row = base_row(i, model="savae", beta=b, gamma=g, latent_dim=k, seed=s, recon_mse=err,
                       fid=100 * err, classifier_acc=0.9 - err, trial_dir=trial.name)
        if (b, g, k, s) == (0.1, 0.0, 2, 0):
            row.update(status="diverged", error="non-finite loss at epoch 2", diverged_epoch=2,
                       recon_mse=None, fid=None, classifier_acc=None)
        else:
            noisy = (x + err * 4 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
            row["recon_fixed_png"] = f"{trial.name}/{save_grid(noisy, trial / 'recon_fixed.png', 20)}"
            row["fixed_inputs_png"] = f"{trial.name}/{save_grid(x, trial / 'fixed_inputs.png', 20)}"
            row["samples_png"] = f"{trial.name}/{save_grid(noisy[:16], trial / 'samples.png', 4)}"
        rows.append(row)
        hist += [{"trial_id": row["trial_id"], "epoch": e, "loss": 1.0 / e + err, "epoch_time_s": 5.0}
                 for e in (1, 2)]
    return write_run(run_dir, rows, hist)


def result_json_trial(run_dir: Path, name: str, lines: list[dict], error: str | None = None,
                      params: dict | None = None) -> Path:
    """A Ray trial folder as Tune leaves it mid-sweep: params.json (the config, written at
    the start), result.json (one JSON line per report), error.txt when it failed."""
    trial = run_dir / name
    trial.mkdir(parents=True, exist_ok=True)
    if params is not None:
        (trial / "params.json").write_text(json.dumps(params))
    (trial / "result.json").write_text("".join(json.dumps(ln) + "\n" for ln in lines))
    if error:
        (trial / "error.txt").write_text(f"Traceback (most recent call last):\n  ...\n{error}\n")
    return trial
