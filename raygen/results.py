"""Ray Tune results -> ``results.parquet`` (one row per trial) and ``history.parquet``
(one row per trial and epoch), written atomically. No model code here.

Both files are built from the experiment's stored state (the ResultGrid of a finished or
restored Tuner), so they can be rebuilt at any time and never count a trial twice.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from .config import from_tune

# Ray's own per-result bookkeeping that says nothing about the model.
_RAY_NOISE = {"done", "training_iteration", "timestamp", "date", "time_this_iter_s", "time_since_restore",
              "iterations_since_restore", "checkpoint_dir_name", "should_checkpoint", "config", "pid",
              "history_json"}


def _status(metrics: dict[str, Any], error: BaseException | None) -> tuple[str, str | None]:
    if error is not None:
        text = str(error).strip().splitlines()
        return "failed", (text[-1] if text else type(error).__name__)[:2000]
    if metrics.get("status"):
        return str(metrics["status"]), metrics.get("error")
    if not metrics.get("training_iteration"):
        return "pending", None  # never reported: the sweep was interrupted before it ran
    return "stopped", None  # ended by the scheduler (ASHA) or a stop condition before its last epoch


def resolved_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config with every default filled in (a GAN row shows its latent_dim of 100 even
    when the sweep file never named it). Unresolvable configs are returned as given."""
    from dataclasses import asdict

    from .config import split_config
    from .errors import RaygenError

    if "model" not in config:  # e.g. a trial the sweep never started: nothing to resolve
        return config
    try:
        train, _, model_cfg = split_config(config)
    except RaygenError:
        return config
    return {**asdict(train), **asdict(model_cfg), **config}


def _cell(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def rows_from_grid(grid, sweep: str, run: str, run_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, hist = [], []
    for res in grid:
        metrics = dict(res.metrics or {})
        given = {k: v for k, v in from_tune(res.config or {}).items() if not k.startswith("_") and v is not None}
        config = {k: _cell(v) for k, v in resolved_config(given).items()}
        trial_id = metrics.get("trial_id") or Path(str(res.path)).name
        status, error = _status(metrics, res.error)
        row = {"sweep": sweep, "run": run, "trial_id": trial_id, "status": status, "error": error, **config}
        for k, v in metrics.items():
            if k in _RAY_NOISE or k in ("status", "error", "trial_id") or k in config:
                continue
            if k.endswith("_png") and v:
                v = os.path.relpath(os.path.join(str(res.path), v), str(run_dir))
            row[k] = _cell(v)
        row["wall_time_s"] = metrics.get("time_total_s")
        row["trial_dir"] = os.path.relpath(str(res.path), str(run_dir))
        rows.append(row)
        # The trial's own record of every epoch when it finished (see trainable.Trial.history),
        # else what Ray logged.
        own = metrics.get("history_json")
        df = pd.DataFrame(json.loads(own)) if isinstance(own, str) and own else res.metrics_dataframe
        if df is not None and len(df):
            keep = [c for c in df.columns if c not in _RAY_NOISE and not c.startswith("config/")
                    and not c.endswith("_png") and c not in ("trial_id", "error")]
            h = df[keep].copy()
            h.insert(0, "trial_id", trial_id)
            hist.append(h)
    results = pd.DataFrame(rows)
    history = pd.concat(hist, ignore_index=True) if hist else pd.DataFrame(columns=["trial_id", "epoch"])
    if "epoch" in history and len(history):
        # A trial restored from a checkpoint re-runs the epochs after it: keep the last run of each.
        history = history.drop_duplicates(["trial_id", "epoch"], keep="last").reset_index(drop=True)
    return results, history


def write_parquet(df: pd.DataFrame, uri: str | os.PathLike) -> str:
    """Atomic: a temporary file beside the target renamed over it (an object store's
    single PUT is atomic by itself)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .storage import filesystem

    fs, path = filesystem(str(uri))
    parent = path.rsplit("/", 1)[0]
    fs.create_dir(parent, recursive=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    tmp = f"{parent}/.{path.rsplit('/', 1)[1]}.{os.getpid()}.tmp"
    pq.write_table(table, tmp, filesystem=fs)
    fs.move(tmp, path)
    return str(uri)


def best_trial(results: pd.DataFrame, metric: str, mode: str) -> dict[str, Any] | None:
    """The best completed trial by ``metric`` (its id, value and the config keys that vary)."""
    if metric not in results or "status" not in results:
        return None
    ok = results[(results.status == "completed") & results[metric].notna()]
    if ok.empty:
        return None
    row = ok.loc[ok[metric].idxmin() if mode == "min" else ok[metric].idxmax()]
    varying = [c for c in results.columns if c in _config_keys(results) and results[c].astype(str).nunique() > 1]
    return {"metric": metric, "mode": mode, "trial_id": row.trial_id, metric: float(row[metric]),
            **{c: row[c] for c in varying}}


def _config_keys(results: pd.DataFrame) -> set[str]:
    from dataclasses import fields

    from .config import TrainConfig
    from .registry import MODELS

    keys = {f.name for f in fields(TrainConfig)}
    for name in results.get("model", pd.Series(dtype=str)).dropna().unique():
        if name in MODELS:
            keys |= {f.name for f in fields(MODELS.get(name).Config)}
    return keys


def benchmark_line(results: pd.DataFrame, wall_s: float, slots: int, resumed: bool = False) -> str:
    """trials, wall time, and how much of it went to training vs. everything else."""
    n = len(results)
    train = float(results["train_time_s"].fillna(0).sum()) if "train_time_s" in results else 0.0
    evals = float(results["eval_time_s"].fillna(0).sum()) if "eval_time_s" in results else 0.0
    if resumed:  # the trials' times span every session, the wall only this one: no overhead to speak of
        return (f"benchmark: {n} trials, resumed: wall {wall_s:.1f} s this session; training {train:.1f} s, "
                f"evaluation {evals:.1f} s (trial-seconds, all sessions)")
    busy = (train + evals) / max(slots, 1)
    return (f"benchmark: {n} trials, wall {wall_s:.1f} s on {slots} slot(s); training {train:.1f} s, "
            f"evaluation {evals:.1f} s (trial-seconds); overhead {max(wall_s - busy, 0):.1f} s "
            f"({100 * max(wall_s - busy, 0) / max(wall_s, 1e-9):.0f}% of wall)")
