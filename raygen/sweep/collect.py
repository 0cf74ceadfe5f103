"""Ray Tune results -> ``results.parquet`` (one row per trial) and ``history.parquet``
(one row per trial and epoch), written atomically, with the metric declarations in their
metadata.

Both files are built from the experiment's stored state (the ResultGrid of a finished or
restored Tuner), so they can be rebuilt at any time and never count a trial twice.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Any

import pandas as pd

from raygen.core.errors import RaygenError
from raygen.core.storage import join, write_parquet
from raygen.core.values import plain
from raygen.engine.config import split_config
from raygen.metrics.evaluate import declared_columns, declared_kinds
from raygen.record import keys
from raygen.record import published as paper
from raygen.record.columns import to_json
from raygen.record.keys import ERROR, STATUS, TRIAL_ID, Kind
from raygen.record.rows import label_history, results_frame, stack_history, trial_rows
from raygen.record.transport import with_history


def resolved_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config with every default filled in (a GAN row shows its latent_dim of 100 even
    when the sweep file never named it). Unresolvable configs are returned as given."""
    if "model" not in config:  # e.g. a trial the sweep never started: nothing to resolve
        return config
    try:
        train, _, model_cfg = split_config(config)
    except RaygenError:
        return config
    return {**asdict(train), **asdict(model_cfg), **config}


def planned_trials(grid) -> dict[str, tuple[str, dict]]:
    """trial path -> (trial id, config) of every trial, from Ray's Trial objects. For a trial
    that never reported: its Result has no config (Ray takes ``Result.config`` from the last
    result), its folder may hold no params.json (a pending trial never started), and Ray's
    public API has it nowhere else; ResultGrid keeps the trials in a private attribute."""
    analysis = getattr(grid, "_experiment_analysis", None)
    return {str(t.path): (t.trial_id, t.config) for t in getattr(analysis, "trials", None) or []}


def rows_from_grid(grid, sweep: str, run: str, run_dir: str | os.PathLike, interrupted: bool = False
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per trial; after Ctrl-C (``interrupted``), unfinished trials are ``interrupted``."""
    rows, config_keys, hist = [], set(), []
    planned = planned_trials(grid)
    for res in grid:
        own_id, own_config = planned.get(str(res.path), (None, {}))
        metrics, config = dict(res.metrics or {}), res.config
        if own_id and metrics.get(TRIAL_ID) not in (None, own_id):  # another trial's result (a reused actor's)
            metrics, config = {TRIAL_ID: own_id}, None
        metrics = with_history(metrics, lambda name, r=res: _read_bytes(r, name))
        trial_dir = os.path.relpath(str(res.path), str(run_dir))
        config = config or own_config
        for row, cfg, h in trial_rows(
                sweep=sweep, run=run, trial_dir=trial_dir, config=config, metrics=metrics,
                error=None if res.error is None else str(res.error) or type(res.error).__name__,
                unfinished=keys.INTERRUPTED if interrupted else keys.STOPPED, logged=res.metrics_dataframe,
                resolve=resolved_config):
            rows.append(row)
            config_keys.update(cfg)
            hist.append(h)
    results = typed(results_frame(rows, config_keys))
    return results, label_history(stack_history(hist), results)


def _read_bytes(res, name: str) -> bytes | None:
    """A file of a trial's folder, wherever Ray stores it (local or a bucket); None if unreadable."""
    try:
        # as stored: pyarrow would gunzip a .gz name itself (compression="detect")
        with res.filesystem.open_input_stream(f"{str(res.path).rstrip('/')}/{name}", compression=None) as f:
            return f.read()
    except (OSError, ValueError, AttributeError):
        return None


def add_unstarted(results: pd.DataFrame, configs: list[dict], sweep: str, run: str, status: str,
                  error: str | None = None) -> pd.DataFrame:
    """A row for each of the sweep's configurations that has no trial: a grid generates its
    trials as slots free up, so after Ctrl-C some never existed (``interrupted``); a run
    resumed from an older copy of Ray's state may have lost some (``failed``, ``error``)."""
    def same(v):  # a whole-number setting reads back as 5.0 from a column other models leave empty
        v = plain(v)
        return int(v) if isinstance(v, float) and v.is_integer() else v

    def signature(values: dict, names: tuple) -> str:
        return json.dumps({k: same(values.get(k)) for k in names}, sort_keys=True, default=str)

    seen: dict[tuple, set] = {}
    extra = []
    for i, cfg in enumerate(configs):
        names = tuple(sorted(cfg))
        if names not in seen:
            seen[names] = {signature(row, names) for row in results.to_dict("records")}
        if signature(cfg, names) in seen[names]:
            seen[names].discard(signature(cfg, names))  # one trial stands for one configuration
            continue
        extra.append({keys.SWEEP: sweep, keys.RUN: run, TRIAL_ID: f"unstarted_{i:05d}", STATUS: status, ERROR: error,
                      **{k: plain(v) for k, v in resolved_config(cfg).items()}})
    if not extra:
        return results
    out = pd.concat([results, pd.DataFrame(extra)], ignore_index=True)
    out.attrs = dict(results.attrs)
    return out


def column_kinds(results: pd.DataFrame) -> dict[str, str]:
    """Every result column's kind (``record.keys``), from the declarations and the results'
    configuration columns."""
    return keys.kinds(results.columns, declared_kinds(), results.attrs.get("config_columns", []))


def typed(results: pd.DataFrame) -> pd.DataFrame:
    """Every declared metric and time a float64 column and the errors strings, present even
    when nothing measured them (an all-null column would be Arrow's null type, and runs with
    and without it would not stack); counts integers."""
    kinds = column_kinds(results)
    always = [c.name for c in declared_columns() if c.better is not None and c.kind == Kind.METRIC]
    always += sorted(keys.TIMES)
    for name in dict.fromkeys([*always, *keys.of_kind(kinds, Kind.TIME)]):
        results[name] = pd.to_numeric(results[name], errors="coerce").astype("float64") \
            if name in results else pd.Series(float("nan"), index=results.index, dtype="float64")
    for name in keys.of_kind(kinds, Kind.COUNT):  # integers, with <NA> where a trial has none
        results[name] = pd.to_numeric(results[name], errors="coerce").round().astype("Int64")
    for name in (ERROR, keys.METRIC_ERRORS):
        results[name] = results[name].astype("string") if name in results else pd.Series(
            pd.NA, index=results.index, dtype="string")
    for name in results.columns:  # text columns nothing filled in (an extractor that never ran): text still
        if kinds.get(name) in TEXT_KINDS and results[name].dtype == object and \
                all(isinstance(v, str) or pd.isna(v) for v in results[name]):
            results[name] = results[name].astype("string")
    return results


TEXT_KINDS = (Kind.BOOKKEEPING, Kind.STATUS, Kind.IMAGE)


def shared_metric_errors(results: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Metric errors every evaluated trial shares (Inception without its weights) moved out
    of the rows, to be said once: (results without them, the shared messages)."""
    if "metric_errors" not in results or "eval_time_s" not in results:
        return results, []
    evaluated = results["eval_time_s"].notna()
    lines = [set(str(e).splitlines()) if isinstance(e, str) and e else set()
             for e in results.loc[evaluated, "metric_errors"]]
    shared = sorted(set.intersection(*lines)) if lines else []
    if not shared:
        return results, []
    out = results.copy()
    out["metric_errors"] = pd.Series([("\n".join(ln for ln in str(e).splitlines() if ln not in shared) or None)
                                      if isinstance(e, str) else None for e in results["metric_errors"]],
                                     index=results.index, dtype="string")
    out.attrs = dict(results.attrs)
    return out, shared


def run_metadata(results: pd.DataFrame | None = None, published: dict | None = None,
                 notes: list[str] = (), provenance: dict | None = None) -> dict[str, Any]:
    """What the report needs to know without raygen's code of today: the metric
    declarations, which columns are configuration, the published values the sweep
    reproduces (its ``paper:`` block), and metric errors every trial shared (``notes``)."""
    config = results.attrs.get("config_columns", []) if results is not None else []
    # every column's kind; before there are results (raygen.json at the start), the declared ones'
    kinds = column_kinds(results) if results is not None else {**keys.FIXED, **declared_kinds()}
    meta = {"columns": to_json(declared_columns()), "config_columns": config, "kinds": kinds,
            "metric_notes": list(notes)}
    if published:
        meta["paper"] = paper.to_json(published)
    if provenance:
        meta["provenance"] = provenance
    return meta


def write_results(results: pd.DataFrame, history: pd.DataFrame, run_dir: str,
                  published: dict | None = None, provenance: dict | None = None) -> list[str]:
    """results.parquet and history.parquet; the metric errors said once (returned)."""
    results, notes = shared_metric_errors(results)
    meta = run_metadata(results, published, notes, provenance)
    write_parquet(results, join(run_dir, "results.parquet"), meta)
    write_parquet(history, join(run_dir, "history.parquet"), meta)
    return notes


def best_trial(results: pd.DataFrame, metric: str, mode: str) -> dict[str, Any] | None:
    """The best completed trial by ``metric`` (its id, value and the config keys that vary)."""
    if metric not in results or STATUS not in results:
        return None
    ok = results[(results[STATUS] == keys.COMPLETED) & results[metric].notna()].reset_index(drop=True)
    if ok.empty:
        return None
    config = results.attrs.get("config_columns", [])
    varying = [c for c in config if results[c].astype(str).nunique(dropna=False) > 1]
    over_seeds = best_configuration(ok, [c for c in varying if c != "seed"], metric, mode) \
        if "seed" in varying else None
    if over_seeds is not None:  # the best seed of the best configuration, as the report's verdict has it
        ok = ok[_signatures(ok, list(over_seeds["keys"])) == _signature(over_seeds["keys"].values())]
    row = ok.loc[ok[metric].idxmin() if mode == "min" else ok[metric].idxmax()]
    out = {"metric": metric, "mode": mode, TRIAL_ID: str(row[TRIAL_ID]), metric: float(row[metric]),
           **{c: plain(row[c]) for c in varying}}
    if over_seeds is not None:
        out["over_seeds"] = {k: v for k, v in over_seeds.items() if k != "keys"}
    return out


def _signature(values) -> str:
    """Values as one comparable string (missing values equal to each other, unlike NaN)."""
    return json.dumps([plain(v) for v in values], default=str)


def _signatures(frame: pd.DataFrame, cols: list[str]) -> pd.Series:
    return pd.Series([_signature(row) for row in frame[cols].itertuples(index=False, name=None)], index=frame.index)


def best_configuration(ok: pd.DataFrame, keys_: list[str], metric: str, mode: str) -> dict[str, Any] | None:
    """The configuration (``keys_``, seed aside) whose mean ``metric`` over its seeds is best:
    ``{"keys": ..., "mean", "std", "seeds"}``; None when no configuration ran more than one seed."""
    groups = ok.groupby(_signatures(ok, keys_), sort=False)
    stats = [(part, float(part[metric].mean()), len(part)) for _, part in groups]
    if not stats or max(n for _, _, n in stats) < 2:
        return None
    part, mean, n = (min if mode == "min" else max)(stats, key=lambda s: s[1])
    std = float(part[metric].std()) if n > 1 else None
    return {"keys": {k: plain(part[k].iloc[0]) for k in keys_}, "mean": mean, "std": std, "seeds": n}


def benchmark_line(results: pd.DataFrame, wall_s: float, slots: int, resumed: bool = False,
                   ray_start_s: float | None = None) -> str:
    """trials, wall time, and how much of it went to training, the latent sampler's fit and
    evaluation vs. everything else; ``ray_start_s``: Ray's own start, paid once before the wall."""
    n = len(results)

    def total(col: str) -> float:
        return float(pd.to_numeric(results[col], errors="coerce").fillna(0).sum()) if col in results else 0.0

    train, fit, evals, images = total("train_time_s"), total("sampler_fit_s"), total("eval_time_s"), total("images_s")
    parts = (f"training {train:.1f} s, " + (f"sampler fit {fit:.1f} s, " if fit else "") + f"evaluation {evals:.1f} s"
             + (f", images {images:.1f} s" if images else ""))
    start = f"; Ray's start {ray_start_s:.1f} s before it" if ray_start_s is not None else ""
    if resumed:  # the trials' times span every session, the wall only this one: no overhead to speak of
        return (f"benchmark: {n} trials, resumed: wall {wall_s:.1f} s this session; {parts} "
                f"(trial-seconds, all sessions){start}")
    busy = (train + fit + evals + images) / max(slots, 1)
    return (f"benchmark: {n} trials, wall {wall_s:.1f} s on {slots} slot(s); {parts} (trial-seconds); "
            f"overhead {max(wall_s - busy, 0):.1f} s ({100 * max(wall_s - busy, 0) / max(wall_s, 1e-9):.0f}% of wall)"
            f"{start}\n{bookkeeping_line(results)}")


def bookkeeping_line(results: pd.DataFrame) -> str:
    """Per-trial start-up (a worker's first trial from its process's start: imports, the data read;
    later ones reuse the actor) and the checkpoints written to the run's storage this session."""
    parts = []
    if "startup_s" in results and results["startup_s"].notna().any():
        start = pd.to_numeric(results["startup_s"], errors="coerce")
        if "first_on_worker" not in results:  # rows that never said which trial came first on its worker
            parts.append(f"trial start-up: at most {start.max():.2f} s")
        else:
            first = results["first_on_worker"].fillna(False).astype(bool)
            later, firsts = start[~first].dropna(), start[first].dropna()
            starts = ([f"at most {later.max():.2f} s on a reused worker"] if len(later) else []) + (
                [f"{firsts.max():.1f} s for a worker's first trial (its process's start and imports included)"]
                if len(firsts) else [])
            parts.append("trial start-up: " + ", ".join(starts))
    if "checkpoints" in results:
        once = results[~results["stack_id"].duplicated() | results["stack_id"].isna()] \
            if "stack_id" in results else results  # a stack's members share its checkpoints
        count = int(pd.to_numeric(once["checkpoints"], errors="coerce").fillna(0).sum())
        mb = float(pd.to_numeric(results["checkpoint_mb"], errors="coerce").fillna(0).sum())
        parts.append(f"checkpoints: {count} written, {mb:.1f} MB ({mb / max(len(results), 1):.1f} MB per trial)")
    return "bookkeeping: " + ("; ".join(parts) or "nothing recorded")


def add_checkpoint_tally(results: pd.DataFrame, written: dict[str, list[int]]) -> pd.DataFrame:
    """``checkpoints`` and ``checkpoint_mb`` per trial: what it wrote to storage this session."""
    if len(results) and "trial_id" in results:
        # a stacked trial's members share its checkpoints: each counts them, with its share of the bytes
        ray_id = results["stack_id"].fillna(results["trial_id"]) if "stack_id" in results else results["trial_id"]
        size = pd.to_numeric(results["stacked"], errors="coerce").fillna(1) if "stacked" in results else 1
        results["checkpoints"] = ray_id.map(lambda t: written.get(t, [0, 0])[0])
        results["checkpoint_mb"] = ray_id.map(lambda t: written.get(t, [0, 0])[1] / 2**20) / size
    return results
