"""The report's tables, built from ``results.parquet`` / ``history.parquet`` frames alone.

Everything here is pure pandas: ``analyze`` reads what the sweep varied (which columns are
configuration, which of them were swept, which metrics exist), ``summarize`` averages
each configuration over its seeds, and the ``*_table`` builders return ``Table`` objects
(display strings plus which rows/cells to highlight) that ``report.py`` renders to HTML
and Markdown. Any column may be missing or null; an empty or all-failed run gives empty
tables, never an exception.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import RaygenError

# Quality metrics in the order tables show them, each with "lower is better" (True) or not.
METRICS: dict[str, bool] = {
    "fid": True, "inception_score": False, "cls_fid": True, "cls_is": False, "kid": True,
    "precision": False, "recall": False, "recon_mse": True, "recon_bce": True,
    "classifier_acc": False, "latent_class_consistency": False,
}
# What "best" means when nothing else is said: the first of these a sweep has.
PRIMARY = ("fid", "cls_fid", "kid", "recon_mse", "recon_bce", "inception_score", "cls_is")
LABELS = {
    "fid": "FID", "inception_score": "IS", "cls_fid": "FID (MNIST classifier)", "cls_is": "IS (MNIST classifier)",
    "kid": "KID", "precision": "precision", "recall": "recall", "recon_mse": "recon. MSE", "recon_bce": "recon. BCE",
    "classifier_acc": "classifier acc.", "latent_class_consistency": "latent class consistency",
    "num_params": "parameters", "train_time_s": "training time (s)", "wall_time_s": "wall time (s)",
    "latent_dim": "latent size", "beta": "β", "gamma": "γ", "alpha": "α",
}
# Result columns that are bookkeeping, not configuration (the rest of what is not in the
# history, and not a metric or an image, is the trial's configuration).
BOOKKEEPING = {
    "sweep", "run", "trial_id", "status", "error", "trial_dir", "hostname", "node_ip", "device", "eval_split",
    "train_split", "metric_errors", "eval_samples", "epoch", "batches", "diverged_epoch", "num_params",
    "experiment_tag", "time_total_s", "fid_extractor", "fid_samples", "fid_reference", "done",
}
# Never a swept parameter: model/dataset are always keys, seeds are what we average over,
# and the trainer's testing aids only make a trial fail (its failure is listed, not compared).
NOT_SWEPT = {"model", "dataset", "seed", "fail_at_epoch", "nan_at_epoch"}
OK = ("completed", "stopped", "running")  # statuses whose metrics count
PROBLEMS = ("failed", "diverged")
DASH = "—"


def label(col: str) -> str:
    return LABELS.get(col, col)


def arrow(col: str) -> str:
    return {True: " ↓", False: " ↑"}.get(METRICS.get(col), "")


# --- reading what a sweep contains ------------------------------------------------------


def normalize(df: pd.DataFrame) -> pd.DataFrame:
    """Cells holding lists/arrays (tuple configs such as ``hidden``) become strings, so
    every column can be grouped and compared."""
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == object and df[c].map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
            df[c] = df[c].map(lambda v: str(np.asarray(v).tolist()) if isinstance(v, (list, tuple, np.ndarray)) else v)
    return df


def is_config(col: str, history_cols: set[str]) -> bool:
    return not (col in BOOKKEEPING or col in METRICS or col in history_cols or col.endswith(("_png", "_s"))
                or col == "loss" or col.endswith("_loss") or col.startswith(("fid_", "cls_")))


@dataclass
class Layout:
    """What a run holds: its trials, their configuration columns, what was swept."""

    results: pd.DataFrame
    history: pd.DataFrame
    config: list[str] = field(default_factory=list)  # every configuration column
    swept: list[str] = field(default_factory=list)  # varied within some model (never model/dataset/seed)
    keys: list[str] = field(default_factory=list)  # one configuration = one value of these
    metrics: list[str] = field(default_factory=list)  # quality metrics with at least one value
    primary: str | None = None  # what "best" means here

    @property
    def ok(self) -> pd.DataFrame:
        return self.results[self.results["status"].isin(OK)] if "status" in self.results else self.results

    def models(self) -> list[str]:
        return sorted(self.results["model"].dropna().astype(str).unique()) if "model" in self.results else []

    def datasets(self) -> list[str]:
        return sorted(self.results["dataset"].dropna().astype(str).unique()) if "dataset" in self.results else []

    def swept_in(self, rows: pd.DataFrame) -> list[str]:
        """The swept parameters that vary among ``rows`` (e.g. one model's trials)."""
        return [p for p in self.swept if p in rows and rows[p].nunique(dropna=True) > 1]


def analyze(results: pd.DataFrame, history: pd.DataFrame | None = None, metric: str | None = None) -> Layout:
    results = normalize(results if results is not None else pd.DataFrame())
    history = history if history is not None else pd.DataFrame()
    if "status" not in results:
        results["status"] = "completed" if len(results) else pd.Series(dtype=str)
    hist_cols = set(history.columns) - {"trial_id"}
    config = [c for c in results.columns if is_config(c, hist_cols)]
    groups = [g for _, g in results.groupby("model", dropna=False)] if "model" in results else [results]
    swept = [c for c in config if c not in NOT_SWEPT and any(g[c].nunique(dropna=True) > 1 for g in groups)]
    keys = [k for k in ("model", "dataset") if k in results] + swept
    ok = results[results["status"].isin(OK)]
    metrics = [m for m in METRICS if m in ok and pd.to_numeric(ok[m], errors="coerce").notna().any()]
    if metric is not None and metric not in metrics:
        raise RaygenError(f"--metric {metric!r} is not a quality metric this run measured; "
                          f"choose one of: {', '.join(metrics) or '(none measured)'}")
    primary = metric or next((m for m in PRIMARY if m in metrics), None)
    return Layout(results, history, config, swept, keys, metrics, primary)


# --- numbers ------------------------------------------------------------------------------


def fmt(v, digits: int = 4) -> str:
    """4 significant digits, no exponent for everyday magnitudes; blanks as a dash."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)) or v is pd.NA:
        return DASH
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return f"{v:.{decimals(v, digits)}f}" if 1e-4 <= abs(v) < 1e6 or v == 0 else f"{v:.{digits - 1}e}"
    return str(v)


def fmt_key(v) -> str:
    """A configuration value as the sweep file would write it: 0.005, 100, conv."""
    if isinstance(v, (float, np.floating)) and math.isfinite(v):
        return f"{v:g}"
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return str(int(v))
    return fmt(v)


def decimals(v: float, digits: int = 4) -> int:
    return int(min(8, max(0, digits - 1 - math.floor(math.log10(abs(v)))))) if v else 0


def fmt_ms(mean, std, n: int, digits: int = 4) -> str:
    """``mean ± std`` over n seeds (just the mean for one seed)."""
    if mean is None or not np.isfinite(mean):
        return DASH
    if n > 1 and std is not None and np.isfinite(std):
        d = decimals(mean, digits)
        return f"{mean:.{d}f} ± {std:.{d}f}" if 1e-4 <= abs(mean) < 1e6 else f"{mean:.3e} ± {std:.1e}"
    return fmt(float(mean), digits)


def fmt_params(n) -> str:
    if n is None or not np.isfinite(n):
        return DASH
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(int(n))


def config_label(row: pd.Series, params: list[str]) -> str:
    """``latent_dim=10, β=0.005`` (the swept values of one configuration)."""
    parts = [f"{label(p)}={fmt_key(row[p])}" for p in params if p in row and pd.notna(row[p])]
    return ", ".join(parts)


def better(metric: str) -> str:
    return "idxmin" if METRICS.get(metric, True) else "idxmax"


# --- per configuration: mean ± std over seeds ------------------------------------------------

VALUES = ("num_params", "train_time_s", "wall_time_s")


def summarize(lay: Layout) -> pd.DataFrame:
    """One row per configuration: the keys, ``n`` trials, ``n_ok`` that count, and for each
    metric / cost the mean and std over the ok trials (``<m>``, ``<m>_std``)."""
    res = lay.results
    if not len(res):
        return pd.DataFrame(columns=[*lay.keys, "n", "n_ok"])
    cols = [c for c in (*lay.metrics, *VALUES) if c in res]
    ok = res["status"].isin(OK)
    vals = res[cols].apply(pd.to_numeric, errors="coerce").where(ok, np.nan)
    frame = pd.concat([res[lay.keys], vals, ok.rename("_ok")], axis=1)
    by = lay.keys or (lambda _: 0)
    g = frame.groupby(by, dropna=False, sort=True)
    out = g[cols].mean()
    std = g[cols].std().add_suffix("_std")
    out = pd.concat([out, std], axis=1)
    out["n"] = g.size()
    out["n_ok"] = g["_ok"].sum().astype(int)
    return out.reset_index() if lay.keys else out.reset_index(drop=True)


def best_rows(lay: Layout, summ: pd.DataFrame) -> dict[str, tuple[int | None, str | None]]:
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
                out[str(model)] = (int(getattr(rows[m], better(m))()), m)
                break
        else:
            out[str(model)] = (int(rows.index[0]), None) if len(rows) == 1 else (None, None)
    return out


# --- tables -------------------------------------------------------------------------------


@dataclass
class Table:
    key: str  # anchor
    title: str
    frame: pd.DataFrame  # display strings
    caption: str = ""
    best_rows: set[int] = field(default_factory=set)  # positional rows to highlight
    best_cells: set[tuple[int, str]] = field(default_factory=set)  # (row, column) shown bold
    row_class: list[str] = field(default_factory=list)  # css class per row ("failed", ...)


def _bold_best(table: Table, raw: pd.DataFrame, cols: dict[str, str]) -> None:
    """Bold the best value of each metric column (display name -> raw column)."""
    for disp, col in cols.items():
        if col in raw and raw[col].notna().any() and (col in METRICS or col in VALUES):
            lower = METRICS.get(col, True)
            target = raw[col].min() if lower else raw[col].max()
            for i, v in enumerate(raw[col].tolist()):
                if pd.notna(v) and v == target:
                    table.best_cells.add((i, disp))


def _metric_cells(row: pd.Series, cols: list[str], n: int) -> dict[str, str]:
    out = {}
    for c in cols:
        if c == "num_params":
            out[label(c)] = fmt_params(row.get(c))
        else:
            out[label(c) + arrow(c)] = fmt_ms(row.get(c), row.get(c + "_std"), n, 3 if c in VALUES else 4)
    return out


def is_gan_vs_vae(lay: Layout) -> bool:
    """Seed 001's comparison: the sweep holds a GAN and a model with an encoder."""
    models = lay.models()
    has_recon = "recon_mse" in lay.results and lay.results.groupby("model")["recon_mse"].apply(
        lambda s: s.notna().any()) if "model" in lay.results else pd.Series(dtype=bool)
    return any(m.startswith("gan") for m in models) and bool(len(has_recon) and has_recon.any())


def best_per_model_table(lay: Layout, summ: pd.DataFrame) -> Table:
    """Seed 001's GAN vs VAE table (FID, IS, reconstruction error, parameters, training
    time) when the sweep compares the two families, else every metric it has: one row per
    model (and dataset), its best configuration, mean ± std over seeds."""
    gvv = is_gan_vs_vae(lay)
    if gvv:
        metrics = [m for m in ("fid", "inception_score", "recon_mse") if m in lay.metrics]
        missing = [label(m) for m in ("fid", "inception_score") if m not in lay.metrics]
    else:
        metrics, missing = list(lay.metrics), []
    cols = [*metrics, "num_params", "train_time_s"]
    rows, raw, chosen_by = [], [], []
    datasets = lay.datasets()
    per = summ.groupby("dataset", dropna=False) if len(datasets) > 1 else [(None, summ)]
    for ds, part in per:
        for model, (i, by) in best_rows(lay, part.reset_index(drop=True)).items():
            if i is None:
                continue
            r = part.reset_index(drop=True).iloc[i]
            model_rows = lay.results[lay.results["model"].astype(str) == model] if "model" in lay.results else lay.results
            cell = {"model": model}
            if ds is not None:
                cell["dataset"] = str(ds[0] if isinstance(ds, tuple) else ds)
            cell["best configuration"] = config_label(r, lay.swept_in(model_rows)) or DASH
            cell.update(_metric_cells(r, cols, int(r["n_ok"])))
            cell["seeds"] = f"{int(r['n_ok'])}/{int(r['n'])}"
            rows.append(cell)
            raw.append(r)
            chosen_by.append(by)
    title = "GAN vs VAE (seed 001 form)" if gvv else "Best configuration per model"
    caption = "Each model's best configuration" + (f" by {label(lay.primary)}{arrow(lay.primary)}" if lay.primary else "")
    caption += "; mean ± std over seeds (seeds = trials that finished / trials run). Bold: best in column; " \
               "green row: best overall."
    if missing:
        caption += f" Not measured in this run: {', '.join(missing)}."
    t = Table("best", title, pd.DataFrame(rows), caption)
    rawf = pd.DataFrame(raw).reset_index(drop=True)
    _bold_best(t, rawf, {label(c) + ("" if c == "num_params" else arrow(c)): c for c in metrics})
    if lay.primary and lay.primary in rawf and rawf[lay.primary].notna().any():
        t.best_rows.add(int(getattr(rawf[lay.primary], better(lay.primary))()))
    return t


def best_param_tables(lay: Layout, summ: pd.DataFrame, limit: int = 3) -> list[Table]:
    """"Which β?": for each swept parameter with 3+ values, its best value for every
    combination of the other keys (each model, γ, latent size ...)."""
    if not lay.primary or not len(summ):
        return []
    m = lay.primary
    order = sorted(lay.swept, key=lambda p: ("beta", "gamma", "latent_dim").index(p)
                   if p in ("beta", "gamma", "latent_dim") else 9)
    out = []
    for p in order:
        if summ[p].nunique(dropna=True) < 3 or len(out) >= limit:
            continue
        others = [k for k in lay.keys if k != p and summ[k].nunique(dropna=False) > 1]
        rows = []
        groups = summ.groupby(others, dropna=False, sort=True) if others else [((), summ)]
        for key, part in groups:
            part = part[part[m].notna() & part[p].notna()]
            if part[p].nunique() < 2:
                continue
            key = key if isinstance(key, tuple) else (key,)
            b = part.loc[getattr(part[m], better(m))()]
            row = {label(k): fmt_key(v) for k, v in zip(others, key)}
            row[f"best {label(p)}"] = fmt_key(b[p])
            row[label(m) + arrow(m)] = fmt_ms(b[m], b.get(m + "_std"), int(b["n_ok"]))
            row[f"{label(p)} tried"] = ", ".join(fmt_key(v) for v in sorted(part[p].unique()))
            rows.append(row)
        if rows:
            out.append(Table(f"best-{p}", f"Which {label(p)}?", pd.DataFrame(rows),
                             f"The {label(p)} with the best {label(m)}{arrow(m)} (mean over seeds) "
                             f"for each combination of the other swept values."))
    return out


def model_dataset_tables(lay: Layout, summ: pd.DataFrame) -> list[Table]:
    """Seed 004 Tables 3 and 4: dataset × model, the quality metric and the total training
    time of each model's best configuration; the best of each row in bold."""
    models, datasets = lay.models(), lay.datasets()
    if len(models) < 2 or not len(datasets) or (len(datasets) < 2 and is_gan_vs_vae(lay)):
        return []
    m = lay.primary
    specs = ([(m, f"{label(m)} by dataset and model (seed 004 Table 3 form)")] if m else []) + [
        ("train_time_s", "Total training time (s) by dataset and model (seed 004 Table 4 form)")]
    tables = []
    for col, title in specs:
        rows, raw = [], []
        for ds in datasets:
            part = summ[summ["dataset"].astype(str) == ds].reset_index(drop=True)
            best = best_rows(lay, part)
            row, vals = {"dataset": ds}, {}
            for model in models:
                i = best.get(model, (None, None))[0]
                r = part.iloc[i] if i is not None else None
                row[model] = fmt_ms(r[col], r.get(col + "_std"), int(r["n_ok"])) if r is not None and col in r else DASH
                vals[model] = r[col] if r is not None and col in r else np.nan
            rows.append(row)
            raw.append(vals)
        t = Table(f"table-{col}", title, pd.DataFrame(rows),
                  "Each cell: the model's best configuration on that dataset, mean ± std over seeds. "
                  f"Bold: best in the row ({'lower' if METRICS.get(col, True) else 'higher'} is better).")
        for i, vals in enumerate(raw):
            s = pd.Series(vals, dtype=float)
            if s.notna().any():
                target = s.min() if METRICS.get(col, True) else s.max()
                t.best_cells |= {(i, k) for k, v in s.items() if v == target}
        tables.append(t)
    return tables


def summary_table(lay: Layout, summ: pd.DataFrame) -> Table:
    """Every configuration, mean ± std over its seeds; each model's best row highlighted."""
    cols = [*lay.metrics, *[c for c in VALUES if c in summ]]
    rows = []
    for _, r in summ.iterrows():
        row = {label(k): fmt_key(r[k]) for k in lay.keys}
        row.update(_metric_cells(r, cols, int(r["n_ok"])))
        row["seeds"] = f"{int(r['n_ok'])}/{int(r['n'])}"
        rows.append(row)
    t = Table("configurations", "Every configuration (mean ± std over seeds)", pd.DataFrame(rows),
              "Green rows: each model's best configuration"
              + (f" by {label(lay.primary)}{arrow(lay.primary)}" if lay.primary else "") + ". Bold: best in column.")
    t.best_rows = {i for i, _ in best_rows(lay, summ).values() if i is not None}
    _bold_best(t, summ, {label(c) + ("" if c == "num_params" else arrow(c)): c for c in lay.metrics})
    t.row_class = ["" if int(r["n_ok"]) else "failed" for _, r in summ.iterrows()]
    return t


def trial_order(lay: Layout) -> pd.DataFrame:
    keys = [k for k in (*lay.keys, "seed") if k in lay.results]
    return lay.results.sort_values(keys, kind="stable", na_position="last") if keys else lay.results


def trials_table(lay: Layout) -> Table:
    """Every trial, in configuration order, with its status, metrics and times."""
    res = trial_order(lay)
    cols = [c for c in ("trial_id", "status", *lay.keys, "seed", "epoch", *lay.metrics, "train_time_s",
                        "wall_time_s", "hostname", "error") if c in res]
    keyish = {"trial_id", "status", "hostname", "error", "seed", "epoch", *lay.keys}
    frame = pd.DataFrame({label(c): [(fmt_key if c in keyish else fmt)(v) for v in res[c].tolist()] for c in cols})
    if "epoch" in frame:
        frame = frame.rename(columns={"epoch": "epochs done"})
    t = Table("trials", "Every trial", frame)
    t.row_class = [s if s in PROBLEMS else "" for s in res["status"].astype(str)] if len(res) else []
    return t


def problems_table(lay: Layout) -> Table:
    """Failed and diverged trials with their errors, and metrics that could not be computed."""
    res = trial_order(lay)
    rows = []
    for _, r in res.iterrows():
        status = str(r.get("status"))
        merr = r.get("metric_errors")
        if status not in PROBLEMS and not (isinstance(merr, str) and merr):
            continue
        varied = [k for k in lay.keys if k != "model" and res[k].nunique(dropna=True) > 1]
        where = config_label(r, varied + (["seed"] if "seed" in r else []))
        err = r.get("error") if isinstance(r.get("error"), str) and r.get("error") else None
        what = err if status in PROBLEMS else f"metric errors: {merr}"
        if status == "diverged" and pd.notna(r.get("diverged_epoch")) and "epoch" not in str(what):
            what = f"{what or 'diverged'} (epoch {fmt_key(r['diverged_epoch'])})"
        rows.append({"trial_id": fmt_key(r.get("trial_id")), "status": status, "model": fmt_key(r.get("model")),
                     "configuration": where or DASH, "error": fmt(what) if what is not None else "(no message)"})
    t = Table("problems", "Failed and diverged trials", pd.DataFrame(rows),
              "Never dropped silently: every trial that did not finish cleanly, with its error.")
    t.row_class = [r["status"] if r["status"] in PROBLEMS else "warn" for r in rows]
    return t


def header_facts(lay: Layout, run_dir, source: str) -> list[tuple[str, str]]:
    """(label, value) lines for the page header: what ran, where, when, how long, measured how."""
    res, hist = lay.results, lay.history

    def uniq(col: str, frame: pd.DataFrame = res) -> str:
        if col not in frame or not frame[col].notna().any():
            return ""
        return ", ".join(str(v) for v in sorted(frame[col].dropna().astype(str).unique()))

    facts = [("sweep", uniq("sweep") or DASH), ("run", uniq("run") or str(run_dir)), ("read from", source)]
    started = _run_start(uniq("run"))
    if started:
        facts.append(("started", started))
    counts = res["status"].value_counts() if len(res) else pd.Series(dtype=int)
    facts.append(("trials", f"{len(res)}: " + ", ".join(f"{n} {s}" for s, n in counts.items()) if len(res) else "none yet"))
    hosts = uniq("hostname")
    nodes = res["node_ip"].nunique() if "node_ip" in res else 0
    facts.append(("where", f"{hosts or 'host not recorded'}" + (f" ({nodes} Ray node{'s' * (nodes > 1)}: "
                                                                 f"{uniq('node_ip')})" if nodes else "")))
    facts.append(("devices", uniq("device") or "not recorded in these results"))
    for col, name in (("train_time_s", "training time"), ("wall_time_s", "trial wall time")):
        if col in res and res[col].notna().any():
            s = pd.to_numeric(res[col], errors="coerce").dropna()
            facts.append((name, f"total {s.sum():.1f} s over {len(s)} trials; per trial median {s.median():.1f} s, "
                                f"max {s.max():.1f} s"))
    settings = []
    for col, name in (("fid_extractor", "FID extractor"), ("fid_samples", "FID samples"),
                      ("fid_reference", "FID reference"), ("eval_samples", "evaluation samples")):
        if uniq(col):
            settings.append(f"{name} {uniq(col)}")
    # the history has the split actually evaluated on (e.g. test[holdout 1000]); results the config value
    ev = uniq("eval_split", hist) or uniq("eval_split")
    if ev:
        settings.append(f"evaluated on {ev}")
    if uniq("train_split"):
        settings.append(f"trained on {uniq('train_split')}")
    facts.append(("metric settings", "; ".join(settings) or "not recorded"))
    if lay.primary:
        facts.append(("best means", f"{label(lay.primary)} ({'lower' if METRICS[lay.primary] else 'higher'} is better)"))
    return facts


def _run_start(run: str) -> str:
    """Run folders are named ``YYYYmmdd-HHMMSS[-smoke]``."""
    try:
        return pd.to_datetime(run[:15], format="%Y%m%d-%H%M%S").strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, TypeError):
        return ""


def headline(lay: Layout, summ: pd.DataFrame) -> list[str]:
    """The answer in a sentence or two: the best configuration overall, and which models
    the chosen metric could not rank."""
    m = lay.primary
    if not len(lay.results):
        return ["No trial has reported yet."]
    if not m or not len(summ) or not summ[m].notna().any():
        return [f"No quality metric was measured (none of {', '.join(PRIMARY)}); see the tables for losses and times."]
    i = getattr(summ[m], better(m))()
    b = summ.loc[i]
    model_rows = lay.results[lay.results["model"] == b["model"]] if "model" in b else lay.results
    where = config_label(b, ([k for k in ("dataset",) if len(lay.datasets()) > 1]) + lay.swept_in(model_rows))
    n = int(b["n_ok"])
    out = [f"Best by {label(m)}{arrow(m)}: {b.get('model', 'the best configuration')}"
           + (f" ({where})" if where else "") + f", {label(m)} {fmt_ms(b[m], b.get(m + '_std'), n)}"
           + (f" over {n} seeds." if n > 1 else " (one seed).")]
    if "model" in summ:
        ranked = set(summ.loc[summ[m].notna(), "model"].dropna().astype(str))
        unranked = sorted(set(summ["model"].dropna().astype(str)) - ranked)
        if unranked:
            out.append(f"Not ranked by {label(m)} (no value): {', '.join(unranked)}.")
    return out
