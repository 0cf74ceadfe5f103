"""A trial's result row and its per-epoch history, from what Ray Tune recorded: the one
definition, used for ``results.parquet`` (from a ResultGrid) and for the report of a run
still in progress (from the trials' ``result.json``). Plain pandas: no Ray, no torch.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from raygen.record import keys
from raygen.record.keys import ERROR, ROW_KEYS, STATUS, TRIAL_ID
from raygen.record.transport import (
    EPOCHS,
    MEMBER_EPOCHS,
    TRANSPORT_KEYS,
    given_config,
    history,
    members,
    stack_of,
    step_epochs,
)

# Ray's own per-result bookkeeping that says nothing about the model (ray.tune.result's
# AUTO_RESULT_KEYS and the like; its time_total_s becomes wall_time_s).
RAY_KEYS = frozenset({
    keys.DONE, "training_iteration", "timestamp", "date", "time_this_iter_s", "time_since_restore",
    "iterations_since_restore", "checkpoint_dir_name", keys.SHOULD_CHECKPOINT, "config", "pid",
    "time_total_s", "experiment_tag"})
# Not columns: Ray's keys and raygen's transport (which becomes the history and the members' rows).
NOT_COLUMNS = RAY_KEYS | TRANSPORT_KEYS
# The run's metadata (column declarations, published values), written when the sweep starts so
# that a report of the run in progress has it; results.parquet's schema metadata holds the same.
META_FILE = "raygen.json"


def status_of(metrics: dict[str, Any], error: str | None, unfinished: str) -> tuple[str, str | None]:
    """(status, error). A trial that reported its own status keeps it; one that raised is
    ``failed``; one that never reported is ``pending``; otherwise ``unfinished`` (``stopped``
    for a finished sweep: ended by the scheduler; ``running`` for one still going;
    ``interrupted`` after Ctrl-C, which also marks the trials that had not started)."""
    if metrics.get(STATUS):
        return str(metrics[STATUS]), metrics.get(ERROR)
    if error is not None:
        lines = str(error).strip().splitlines()
        return keys.FAILED, (lines[-1] if lines else "error")[:2000]
    if not metrics.get("training_iteration"):
        return (keys.INTERRUPTED if unfinished == keys.INTERRUPTED else keys.PENDING), None
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
    row = {keys.SWEEP: sweep, keys.RUN: run, TRIAL_ID: metrics.get(TRIAL_ID) or trial_dir.rsplit("/", 1)[-1],
           STATUS: status, ERROR: err, **cfg}
    for k, v in metrics.items():
        if k in NOT_COLUMNS or k in ROW_KEYS or k in cfg:
            continue
        row[k] = f"{trial_dir}/{v}" if keys.is_image(k) and isinstance(v, str) and v else _cell(v)
    row[keys.WALL_TIME_S] = metrics.get("time_total_s")
    row[keys.TRIAL_DIR] = trial_dir
    return row, list(cfg)


STACK_SHARED = (keys.STARTUP_S, keys.FIRST_ON_WORKER, keys.RESTARTED)


def trial_rows(*, sweep: str, run: str, trial_dir: str, config: dict[str, Any], metrics: dict[str, Any],
               error: str | None, unfinished: str, logged: pd.DataFrame | None,
               resolve: Callable[[dict], dict] | None = None) -> list[tuple[dict[str, Any], list[str], pd.DataFrame]]:
    """(row, config keys, history) of a Ray trial: one, or for a stacked trial (``stacking.py``)
    one per member, each with its own config, numbers, images (``member_<i>/``) and history,
    as if it had run alone, plus ``stack_id`` (the Ray trial) and ``stacked`` (its size)."""
    configs = stack_of(config)
    if not configs:
        row, cfg = trial_row(sweep=sweep, run=run, trial_dir=trial_dir, config=config, metrics=metrics,
                             error=error, unfinished=unfinished, resolve=resolve)
        return [(row, cfg, history_frame(row[TRIAL_ID], metrics, logged))]
    last = members(metrics)
    whole = history(metrics)
    steps = step_epochs(metrics, logged, MEMBER_EPOCHS) or []
    stack_id = metrics.get(TRIAL_ID) or trial_dir.rsplit("/", 1)[-1]
    # Ray's bookkeeping and the stack's start-up (the members started together) go to every member
    shared = {k: v for k, v in metrics.items() if k in RAY_KEYS or k in STACK_SHARED}
    out = []
    for i, member in enumerate(configs):
        own = {**shared, **(last[i] if i < len(last) and last[i] else {}),
               TRIAL_ID: f"{stack_id}-{i}", keys.STACK_ID: stack_id, keys.STACKED: len(configs)}
        row, cfg = trial_row(sweep=sweep, run=run, trial_dir=f"{trial_dir}/member_{i}", config=member, metrics=own,
                             error=error, unfinished=unfinished, resolve=resolve)
        epochs = whole[i] if whole else [e for step in steps if step and i < len(step) for e in step[i]]
        out.append((row, cfg, epochs_frame(row[TRIAL_ID], epochs)))
    return out


def results_frame(rows: list[dict[str, Any]], config_keys: set[str]) -> pd.DataFrame:
    """The rows as one frame; ``attrs["config_columns"]`` names its configuration columns."""
    df = pd.DataFrame(rows)
    df.attrs["config_columns"] = sorted(k for k in config_keys if k in df)
    return df


def history_frame(trial_id: str, last: dict[str, Any], logged: pd.DataFrame | None) -> pd.DataFrame:
    """Every epoch of one trial: the epochs its steps appended to its epochs file (rewritten
    whole when it ended: complete across restarts), else an earlier version's history file or
    per-step epochs, else what Ray logged."""
    own = history(last)
    steps = step_epochs(last, logged, EPOCHS)
    if own:
        df = pd.DataFrame(own)
    elif steps is not None:
        df = pd.DataFrame([e for s in steps if s for e in s])
    else:
        df = logged
    return epochs_frame(trial_id, df)


def epochs_frame(trial_id: str, epochs: list[dict[str, Any]] | pd.DataFrame | None) -> pd.DataFrame:
    """One trial's epochs as history rows: its numbers, without Ray's keys, the row keys,
    Ray's flattened config and images."""
    df = pd.DataFrame(epochs) if isinstance(epochs, list) else epochs
    if df is None or not len(df):
        return pd.DataFrame()
    keep = [c for c in df.columns if c not in NOT_COLUMNS and c not in ROW_KEYS and not c.startswith("config/")
            and not keys.is_image(c)]
    h = df[keep].copy()
    h.insert(0, TRIAL_ID, trial_id)
    return h


def stack_history(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Histories of every trial; a trial restored from a checkpoint re-runs the epochs after
    it, so each (trial, epoch) keeps its last run."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=[TRIAL_ID, keys.EPOCH])
    out = pd.concat(frames, ignore_index=True)
    if keys.EPOCH in out:
        out = out.drop_duplicates([TRIAL_ID, keys.EPOCH], keep="last").reset_index(drop=True)
    return out


def label_history(history: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """The history with each trial's model and the configuration values that vary across
    the run (what was swept, seed included) beside ``trial_id``: plottable without a join."""
    if not len(history) or TRIAL_ID not in history or TRIAL_ID not in results:
        return history
    config = results.attrs.get("config_columns", [])
    labels = [k for k in ["model", *config] if k in results and k not in history
              and (k == "model" or results[k].astype(str).nunique() > 1)]
    labels = list(dict.fromkeys(labels))
    if not labels:
        return history
    values = results[[TRIAL_ID, *labels]].drop_duplicates(TRIAL_ID)
    out = history.merge(values, on=TRIAL_ID, how="left")
    return out[[TRIAL_ID, *labels, *[c for c in history.columns if c != TRIAL_ID]]]
