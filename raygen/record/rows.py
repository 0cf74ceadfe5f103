"""A trial's result row and its per-epoch history, from what Ray Tune recorded: the one
definition, used for ``results.parquet`` (from a ResultGrid) and for the report of a run
still in progress (from the trials' ``result.json``). Plain pandas: no Ray, no torch.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pandas as pd

from raygen.record.transport import from_tune, stack_of

# Ray's own per-result bookkeeping that says nothing about the model (and the trial's
# history, which becomes history.parquet, not a column).
RAY_KEYS = frozenset({
    "done", "training_iteration", "timestamp", "date", "time_this_iter_s", "time_since_restore",
    "iterations_since_restore", "checkpoint_dir_name", "should_checkpoint", "config", "pid", "history_json",
    "epochs_json", "members_json", "member_epochs_json",
    "time_total_s", "experiment_tag"})
ROW_KEYS = ("sweep", "run", "trial_id", "status", "error")  # the first columns of every row
# The run's metadata (column declarations, published values), written when the sweep starts so
# that a report of the run in progress has it; results.parquet's schema metadata holds the same.
META_FILE = "raygen.json"


def given_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """The trial's config as the sweep set it: lists decoded from their Tune form, Ray's and
    raygen's private keys (``_...``) and unset keys (None: a key only other variants have) dropped."""
    return {k: v for k, v in from_tune(config or {}).items() if not k.startswith("_") and v is not None}


def status_of(metrics: dict[str, Any], error: str | None, unfinished: str) -> tuple[str, str | None]:
    """(status, error). A trial that reported its own status keeps it; one that raised is
    ``failed``; one that never reported is ``pending``; otherwise ``unfinished`` (``stopped``
    for a finished sweep: ended by the scheduler; ``running`` for one still going;
    ``interrupted`` after Ctrl-C, which also marks the trials that had not started)."""
    if metrics.get("status"):
        return str(metrics["status"]), metrics.get("error")
    if error is not None:
        lines = str(error).strip().splitlines()
        return "failed", (lines[-1] if lines else "error")[:2000]
    if not metrics.get("training_iteration"):
        return ("interrupted" if unfinished == "interrupted" else "pending"), None
    return unfinished, None


def _cell(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def trial_row(*, sweep: str, run: str, trial_dir: str, config: dict[str, Any], metrics: dict[str, Any],
              error: str | None, unfinished: str = "stopped",
              resolve: Callable[[dict], dict] | None = None) -> tuple[dict[str, Any], list[str]]:
    """One results row and its configuration columns. ``trial_dir`` is the trial's folder
    relative to the run folder (image paths become relative to the run folder too);
    ``resolve`` fills in config defaults."""
    given = given_config(config)
    cfg = {k: _cell(v) for k, v in (resolve(given) if resolve else given).items()}
    status, err = status_of(metrics, error, unfinished)
    row = {"sweep": sweep, "run": run, "trial_id": metrics.get("trial_id") or trial_dir.rsplit("/", 1)[-1],
           "status": status, "error": err, **cfg}
    for k, v in metrics.items():
        if k in RAY_KEYS or k in ROW_KEYS or k in cfg:
            continue
        row[k] = f"{trial_dir}/{v}" if k.endswith("_png") and isinstance(v, str) and v else _cell(v)
    row["wall_time_s"] = metrics.get("time_total_s")
    row["trial_dir"] = trial_dir
    return row, list(cfg)


def trial_rows(*, sweep: str, run: str, trial_dir: str, config: dict[str, Any], metrics: dict[str, Any],
               error: str | None, unfinished: str, logged: pd.DataFrame | None,
               resolve: Callable[[dict], dict] | None = None) -> list[tuple[dict[str, Any], list[str], pd.DataFrame]]:
    """(row, config keys, history) of a Ray trial: one, or for a stacked trial (``stacking.py``)
    one per member, each with its own config, numbers, images (``member_<i>/``) and history,
    as if it had run alone, plus ``stack_id`` (the Ray trial) and ``stacked`` (its size)."""
    members = stack_of(config)
    if not members:
        row, cfg = trial_row(sweep=sweep, run=run, trial_dir=trial_dir, config=config, metrics=metrics,
                             error=error, unfinished=unfinished, resolve=resolve)
        return [(row, cfg, history_frame(row["trial_id"], metrics, logged))]
    last = json.loads(metrics["members_json"]) if isinstance(metrics.get("members_json"), str) else []
    whole = json.loads(metrics["history_json"]) if isinstance(metrics.get("history_json"), str) else None
    steps = [json.loads(s) for s in logged["member_epochs_json"] if isinstance(s, str)] \
        if logged is not None and "member_epochs_json" in logged else []
    stack_id = metrics.get("trial_id") or trial_dir.rsplit("/", 1)[-1]
    # Ray's bookkeeping and the stack's start-up (the members started together) go to every member
    ray_keys = {k: v for k, v in metrics.items() if k in RAY_KEYS or k in ("startup_s", "first_on_worker")}
    out = []
    for i, member in enumerate(members):
        own = {**ray_keys, **(last[i] if i < len(last) and last[i] else {}),
               "trial_id": f"{stack_id}-{i}", "stack_id": stack_id, "stacked": len(members)}
        row, cfg = trial_row(sweep=sweep, run=run, trial_dir=f"{trial_dir}/member_{i}", config=member, metrics=own,
                             error=error, unfinished=unfinished, resolve=resolve)
        epochs = whole[i] if whole else [e for step in steps for e in step[i]]
        out.append((row, cfg, history_frame(row["trial_id"], {"history_json": json.dumps(epochs)}, None)))
    return out


def results_frame(rows: list[dict[str, Any]], config_keys: set[str]) -> pd.DataFrame:
    """The rows as one frame; ``attrs["config_columns"]`` names its configuration columns."""
    df = pd.DataFrame(rows)
    df.attrs["config_columns"] = sorted(k for k in config_keys if k in df)
    return df


def history_frame(trial_id: str, last: dict[str, Any], logged: pd.DataFrame | None) -> pd.DataFrame:
    """Every epoch of one trial: the trial's own record, which its last result carries
    (``history_json``: complete across restarts), else the epochs each Ray step carried
    (``epochs_json``: a trial stopped before its end), else what Ray logged."""
    own = last.get("history_json")
    if isinstance(own, str) and own:
        df = pd.DataFrame(json.loads(own))
    elif logged is not None and "epochs_json" in logged:
        df = pd.DataFrame([e for s in logged["epochs_json"] if isinstance(s, str) for e in json.loads(s)])
    else:
        df = logged
    if df is None or not len(df):
        return pd.DataFrame()
    keep = [c for c in df.columns if c not in RAY_KEYS and c not in ROW_KEYS and not c.startswith("config/")
            and not c.endswith("_png")]
    h = df[keep].copy()
    h.insert(0, "trial_id", trial_id)
    return h


def stack_history(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Histories of every trial; a trial restored from a checkpoint re-runs the epochs after
    it, so each (trial, epoch) keeps its last run."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["trial_id", "epoch"])
    history = pd.concat(frames, ignore_index=True)
    if "epoch" in history:
        history = history.drop_duplicates(["trial_id", "epoch"], keep="last").reset_index(drop=True)
    return history


def label_history(history: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """The history with each trial's model and the configuration values that vary across
    the run (what was swept, seed included) beside ``trial_id``: plottable without a join."""
    if not len(history) or "trial_id" not in history or "trial_id" not in results:
        return history
    config = results.attrs.get("config_columns", [])
    keys = [k for k in ["model", *config] if k in results and k not in history
            and (k == "model" or results[k].astype(str).nunique() > 1)]
    keys = list(dict.fromkeys(keys))
    if not keys:
        return history
    labels = results[["trial_id", *keys]].drop_duplicates("trial_id")
    out = history.merge(labels, on="trial_id", how="left")
    return out[["trial_id", *keys, *[c for c in history.columns if c != "trial_id"]]]

