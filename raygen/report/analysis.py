"""What a run holds, read from its ``results.parquet`` / ``history.parquet`` frames alone.

``analyze`` finds which columns are configuration, which of them the sweep varied, which
metrics exist and what "best" means; ``summarize`` averages each configuration over its
seeds; the ``fmt*`` helpers print numbers the way the tables show them. Pure pandas: any
column may be missing or null, and an empty or all-failed run is a valid input.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from raygen.core.errors import RaygenError
from raygen.core.values import DASH, decimals, number
from raygen.record import keys
from raygen.record.columns import Column
from raygen.record.keys import OK, PROBLEMS, STATUS, Kind

__all__ = ["DASH", "OK", "PROBLEMS", "Analysis", "analyze", "fmt", "fmt_key", "fmt_ms", "summarize"]

# Labels of what is not a declared metric: costs and configuration keys.
LABELS = {
    keys.NUM_PARAMS: "parameters", keys.TRAIN_TIME_S: "training time (s)", keys.TRAIN_CPU_S: "training CPU-seconds",
    keys.WALL_TIME_S: "wall time (s)",
    "latent_dim": "latent size", "beta": "β", "gamma": "γ", "alpha": "α",
}
# Ray's own keys that runs written before raygen dropped them may hold (never configuration).
RAY_LEFTOVERS = {"experiment_tag", "time_total_s", keys.DONE}
# Never a swept parameter: model/dataset are always keys, seeds are what we average over,
# and the trainer's testing aids only make a trial fail (its failure is listed, not compared).
NOT_SWEPT = {"model", "dataset", "seed"}


# --- reading what a sweep contains ------------------------------------------------------


def normalize(df: pd.DataFrame) -> pd.DataFrame:
    """Cells holding lists/arrays (tuple configs such as ``hidden``) become strings, so
    every column can be grouped and compared."""
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == object and df[c].map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
            df[c] = df[c].map(lambda v: str(np.asarray(v).tolist()) if isinstance(v, (list, tuple, np.ndarray)) else v)
    return df


def column_kinds(results: pd.DataFrame, history_cols: set[str], declared: dict[str, Column]) -> dict[str, str]:
    """Each column's kind as the run's metadata records it (``attrs["kinds"]`` and
    ``attrs["config_columns"]``, written by the sweep). A run written before the kinds were
    recorded gets them from raygen's fixed keys and the run's column declarations; one that names
    no configuration column (older still) takes as configuration what none of those names and
    its history does not hold (costs: ``_s``)."""
    recorded = dict(results.attrs.get("kinds") or {})
    config = list(results.attrs.get("config_columns") or [])
    out = keys.kinds(results.columns, {**{n: c.kind for n, c in declared.items()}, **recorded}, config)
    if not config and Kind.CONFIG not in recorded.values():
        out.update({c: Kind.CONFIG for c in results.columns if c not in out and c not in history_cols
                    and c not in RAY_LEFTOVERS and not str(c).endswith("_s")})
    return out


@dataclass
class Analysis:
    """What a run holds: its trials, their configuration columns, what was swept, which
    metrics it measured (their meaning from the run's column declarations)."""

    results: pd.DataFrame
    history: pd.DataFrame
    config: list[str] = field(default_factory=list)  # every configuration column
    swept: list[str] = field(default_factory=list)  # varied within some model (never model/dataset/seed)
    keys: list[str] = field(default_factory=list)  # one configuration = one value of these
    metrics: list[str] = field(default_factory=list)  # quality metrics with at least one value
    primary: str | None = None  # what "best" means here
    columns: dict[str, Column] = field(default_factory=dict)  # the run's declared metric columns
    kinds: dict[str, str] = field(default_factory=dict)  # every column's kind (``record.keys.Kind``)

    def label(self, col: str) -> str:
        return self.columns[col].label if col in self.columns else LABELS.get(col, col)

    def lower(self, col: str) -> bool:
        """Is lower better? (costs and undeclared columns: yes)"""
        known = self.columns[col].lower_is_better if col in self.columns else None
        return True if known is None else known

    def arrow(self, col: str) -> str:
        known = self.columns[col].lower_is_better if col in self.columns else None
        return {True: " ↓", False: " ↑"}.get(known, "")

    def better(self, col: str) -> str:
        return "idxmin" if self.lower(col) else "idxmax"

    @property
    def time_col(self) -> str:
        """The training time to compare models by: CPU-seconds (every thread of the trial's
        process) when trials shared their node's cores, whose wall times then say more about the
        schedule than about the model; wall seconds when each trained alone."""
        res = self.results
        shared = "trials_beside_max" in res and bool((pd.to_numeric(res["trials_beside_max"], errors="coerce") > 0)
                                                     .any())
        if shared and "train_cpu_s" in res and res["train_cpu_s"].notna().any():
            return "train_cpu_s"
        return "train_time_s"

    def time_words(self) -> str:
        return ("training CPU-seconds (trials shared the machine's cores: wall times would mostly measure the "
                "schedule)" if self.time_col == "train_cpu_s" else "training time (s)")

    def badness(self, col: str, values: pd.Series) -> pd.Series:
        """``values`` as a score where lower is better: the distance to the column's target when it
        has one (sharpness: the data's own, 1), else the value, negated where higher is better."""
        v = pd.to_numeric(values, errors="coerce").astype(float)
        target = self.columns[col].target if col in self.columns else None
        if target is not None:
            return (v - target).abs()
        return v if self.lower(col) else -v

    def best_index(self, values: pd.Series, col: str):
        """The index label of the best of ``values`` (a column ``col``), NaN never best."""
        return self.badness(col, values).idxmin()

    def config_label(self, row: pd.Series, params: list[str]) -> str:
        """``latent size=10, β=0.005`` (the swept values of one configuration)."""
        return ", ".join(f"{self.label(p)}={fmt_key(row[p])}" for p in params if p in row and pd.notna(row[p]))

    def of_kind(self, kind: str) -> list[str]:
        """The result columns of one kind (e.g. ``Kind.IMAGE``), in the results' order."""
        return [c for c in self.results.columns if self.kinds.get(c) == kind]

    @property
    def ok(self) -> pd.DataFrame:
        return self.results[self.results[STATUS].isin(OK)] if STATUS in self.results else self.results

    def models(self) -> list[str]:
        return sorted(self.results["model"].dropna().astype(str).unique()) if "model" in self.results else []

    def datasets(self) -> list[str]:
        return sorted(self.results["dataset"].dropna().astype(str).unique()) if "dataset" in self.results else []

    def swept_in(self, rows: pd.DataFrame) -> list[str]:
        """The swept parameters that vary among ``rows`` (e.g. one model's trials)."""
        return [p for p in self.swept if p in rows and rows[p].nunique(dropna=True) > 1]


def analyze(results: pd.DataFrame, history: pd.DataFrame | None = None, metric: str | None = None,
            columns: dict[str, Column] | None = None) -> Analysis:
    """``columns``: the run's metric declarations (``Run.columns``); the results' own
    ``attrs["config_columns"]`` say which columns are configuration."""
    declared = columns or {}
    results = normalize(results if results is not None else pd.DataFrame())
    history = history if history is not None else pd.DataFrame()
    if STATUS not in results:
        results[STATUS] = keys.COMPLETED if len(results) else pd.Series(dtype=str)
    kinds = column_kinds(results, set(history.columns) - {keys.TRIAL_ID}, declared)
    config = [c for c in results.columns if kinds.get(c) == Kind.CONFIG]
    groups = [g for _, g in results.groupby("model", dropna=False)] if "model" in results else [results]
    swept = [c for c in config if c not in NOT_SWEPT and any(g[c].nunique(dropna=True) > 1 for g in groups)]
    by = [k for k in ("model", "dataset") if k in results] + swept
    ok = results[results[STATUS].isin(OK)]
    metrics = [c.name for c in declared.values() if c.better and c.compare and c.name in ok
               and pd.to_numeric(ok[c.name], errors="coerce").notna().any()]
    if metric is not None and metric not in metrics:
        base = metric.removeprefix(keys.VALIDATION_PREFIX)
        why = (f"is measured on the validation images a budget chooses on; the report ranks on the held-out "
               f"split ({base})" if metric != base and base in metrics
               else "is a diagnostic, not a quality metric to rank by" if metric in declared and metric in ok
               else "is not a quality metric this run measured")
        raise RaygenError(f"--metric {metric!r} {why}; choose one of: {', '.join(metrics) or '(none measured)'}")
    ranked = sorted((declared[m].rank, m) for m in metrics if declared[m].rank is not None)
    primary = metric or next((m for _, m in ranked), None)
    return Analysis(results, history, config, swept, by, metrics, primary, declared, kinds)


# --- numbers ------------------------------------------------------------------------------


def fmt(v, digits: int = 4) -> str:
    """4 significant digits, no exponent for everyday magnitudes; blanks as a dash."""
    return number(v, digits)


def fmt_key(v) -> str:
    """A configuration value as the sweep file would write it: 0.005, 100, conv."""
    if isinstance(v, (float, np.floating)) and math.isfinite(v):
        return f"{v:g}"
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return str(int(v))
    return fmt(v)


def fmt_ms(mean, std, n: int, digits: int = 4) -> str:
    """``mean ± std`` over n seeds (just the mean for one seed)."""
    if mean is None or not np.isfinite(mean):
        return DASH
    if n > 1 and std is not None and np.isfinite(std):
        d = decimals(mean, digits)
        return f"{mean:.{d}f} ± {std:.{d}f}" if 1e-4 <= abs(mean) < 1e6 else f"{mean:.3e} ± {std:.1e}"
    return fmt(float(mean), digits)


def fmt_params(n) -> str:
    if n is None or pd.isna(n) or not np.isfinite(n):  # pd.NA: a configuration whose every trial failed
        return DASH
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(int(n))


# --- per configuration: mean ± std over seeds ------------------------------------------------

VALUES = (keys.NUM_PARAMS, keys.TRAIN_TIME_S, keys.TRAIN_CPU_S, keys.WALL_TIME_S)


def summarize(lay: Analysis) -> pd.DataFrame:
    """One row per configuration: the keys, ``n`` trials, ``n_ok`` whose metrics count
    (completed, or stopped/running with values), ``n_done`` completed, and for each
    metric / cost the mean and std over the ok trials (``<m>``, ``<m>_std``)."""
    res = lay.results
    if not len(res):
        return pd.DataFrame(columns=[*lay.keys, "n", "n_ok", "n_done"])
    cols = [c for c in (*lay.metrics, *VALUES) if c in res]
    ok = res[STATUS].isin(OK)
    vals = res[cols].apply(pd.to_numeric, errors="coerce").where(ok, np.nan)
    done = (res[STATUS] == keys.COMPLETED).rename("_done")
    sick = (res[keys.HEALTH].eq("failed") if keys.HEALTH in res else pd.Series(False, index=res.index)).rename("_sick")
    frame = pd.concat([res[lay.keys], vals, ok.rename("_ok"), done, sick], axis=1)
    by = lay.keys or (lambda _: 0)
    g = frame.groupby(by, dropna=False, sort=True)
    out = g[cols].mean()
    std = g[cols].std().add_suffix("_std")
    out = pd.concat([out, std], axis=1)
    out["n"] = g.size()
    out["n_ok"] = g["_ok"].sum().astype(int)
    out["n_done"] = g["_done"].sum().astype(int)
    out["n_unhealthy"] = g["_sick"].sum().astype(int)  # trials whose training failed its health check
    return out.reset_index() if lay.keys else out.reset_index(drop=True)


def best_rows(lay: Analysis, summ: pd.DataFrame) -> dict[str, tuple[int | None, str | None]]:
    """model -> (index in ``summ`` of its best configuration, the metric that chose it).
    The metric is the run's primary one, else the first metric that model has; a model with
    a single configuration and no metric still gets that configuration (chosen by None)."""
    out = {}
    groups = summ.groupby("model", dropna=False) if "model" in summ else [(None, summ)]
    for model, rows in groups:
        model = model[0] if isinstance(model, tuple) else model
        rows = rows[rows["n_ok"] > 0]
        for m in [lay.primary, *lay.metrics]:
            if m and m in rows and rows[m].notna().any():
                out[str(model)] = (int(lay.best_index(rows[m], m)), m)
                break
        else:
            out[str(model)] = (int(rows.index[0]), None) if len(rows) == 1 else (None, None)
    return out


def trial_order(lay: Analysis) -> pd.DataFrame:
    keys = [k for k in (*lay.keys, "seed") if k in lay.results]
    return lay.results.sort_values(keys, kind="stable", na_position="last") if keys else lay.results
