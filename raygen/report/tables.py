"""The report's tables: each builder takes an ``Analysis`` (and the per-configuration summary)
and returns a ``Table`` of display strings plus which rows and cells to highlight, which
``page.py`` renders to HTML and Markdown. An empty or all-failed run gives empty
tables, never an exception.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from raygen.report.analysis import (
    DASH,
    PROBLEMS,
    VALUES,
    Analysis,
    best_rows,
    fmt,
    fmt_key,
    fmt_ms,
    fmt_params,
    trial_order,
)

# --- tables -------------------------------------------------------------------------------


@dataclass
class Table:
    key: str  # anchor
    title: str
    frame: pd.DataFrame  # display strings
    caption: str = ""
    best_rows: set[int] = field(default_factory=set)  # positional rows to highlight
    best_cells: set[tuple[int, str]] = field(default_factory=set)  # (row, column) shown bold
    bad_cells: set[tuple[int, str]] = field(default_factory=set)  # (row, column) shown red
    row_class: list[str] = field(default_factory=list)  # css class per row ("failed", ...)


def _bold_best(lay: Analysis, table: Table, raw: pd.DataFrame, cols: dict[str, str]) -> None:
    """Bold the best value of each metric column (display name -> raw column): the one closest to
    the column's target where it has one; nothing when the best is tied (all zeros say nothing)."""
    for disp, col in cols.items():
        if col in raw and raw[col].notna().any() and (col in lay.columns or col in VALUES):
            score = lay.badness(col, raw[col]).reset_index(drop=True)
            best = score == score.min()
            if int(best.sum()) == 1:
                table.best_cells.add((int(best.idxmax()), disp))


def _metric_cells(lay: Analysis, row: pd.Series, cols: list[str], n: int) -> dict[str, str]:
    out = {}
    for c in cols:
        if c == "num_params":
            out[lay.label(c)] = fmt_params(row.get(c))
        else:
            out[lay.label(c) + lay.arrow(c)] = fmt_ms(row.get(c), row.get(c + "_std"), n, 3 if c in VALUES else 4)
    return out


def best_per_model_table(lay: Analysis, summ: pd.DataFrame, metrics: list[str] | None = None,
                         title: str = "Best configuration per model", missing: list[str] = ()) -> Table:
    """One row per model (and dataset): its best configuration, mean ± std over seeds of
    ``metrics`` (default: every metric the run has), parameters and training time. A paper's
    section may ask for its own columns and title, and name the ``missing`` ones it wanted."""
    metrics = list(lay.metrics) if metrics is None else metrics
    cols = [*metrics, "num_params", lay.time_col]
    rows, raw = [], []
    datasets = lay.datasets()
    per = summ.groupby("dataset", dropna=False) if len(datasets) > 1 else [(None, summ)]
    for ds, part in per:
        for model, (i, _) in best_rows(lay, part.reset_index(drop=True)).items():
            if i is not None:
                r = part.reset_index(drop=True).iloc[i]
                rows.append(_best_row(lay, r, model, ds, cols))
                raw.append(r)
    by = f" by {lay.label(lay.primary)}{lay.arrow(lay.primary)}" if lay.primary else ""
    caption = (f"Each model's best configuration{by}; mean ± std over seeds (seeds = trials completed / trials "
               "run). Bold: best in column; green row: best overall.")
    if missing:
        caption += f" Not measured in this run: {', '.join(missing)}."
    t = Table("best", title, pd.DataFrame(rows), caption)
    rawf = pd.DataFrame(raw).reset_index(drop=True)
    _bold_best(lay, t, rawf, {lay.label(c) + ("" if c == "num_params" else lay.arrow(c)): c for c in metrics})
    if lay.primary and lay.primary in rawf and rawf[lay.primary].notna().any():
        t.best_rows.add(int(lay.best_index(rawf[lay.primary], lay.primary)))
    return t


def _best_row(lay: Analysis, r: pd.Series, model: str, ds, cols: list[str]) -> dict[str, str]:
    """One model's row of ``best_per_model_table``."""
    model_rows = lay.results[lay.results["model"].astype(str) == model] if "model" in lay.results else lay.results
    cell = {"model": model}
    if ds is not None:
        cell["dataset"] = str(ds[0] if isinstance(ds, tuple) else ds)
    cell["best configuration"] = lay.config_label(r, lay.swept_in(model_rows)) or DASH
    cell.update(_metric_cells(lay, r, cols, int(r["n_ok"])))
    cell["seeds"] = f"{int(r['n_done'])}/{int(r['n'])}"
    if "health" in lay.results:
        cell["training health"] = _health(lay, r)
    return cell


def _health(lay: Analysis, r: pd.Series) -> str:
    """``ok``, or the worst verdict among a configuration's trials, how many, and its first reason."""
    res = lay.results
    same = (res[lay.keys].astype(str) == r[lay.keys].astype(str)).all(axis=1) if lay.keys else res.index == res.index
    for verdict in ("failed", "warning"):
        hit = res[same & res["health"].eq(verdict)]
        if len(hit):
            why = hit["health_reason"].dropna().astype(str) if "health_reason" in hit else pd.Series(dtype=str)
            return f"{verdict} in {len(hit)} of {int(same.sum())}: {why.iloc[0] if len(why) else 'see the trials'}"
    return "ok"


def best_param_tables(lay: Analysis, summ: pd.DataFrame, limit: int = 3, first: tuple[str, ...] = ()) -> list[Table]:
    """"Which value?": for each swept parameter (``first`` first, a paper's order; then the
    sweep's), its best value for every combination of the other keys (each model, ...) that tried 2+."""
    if not lay.primary or not len(summ):
        return []
    m = lay.primary
    order = sorted(lay.swept, key=lambda p: first.index(p) if p in first else len(first))
    out = []
    for p in order:
        if len(out) >= limit:
            break
        others = [k for k in lay.keys if k != p and summ[k].nunique(dropna=False) > 1]
        rows = []
        groups = summ.groupby(others, dropna=False, sort=True) if others else [((), summ)]
        for key, part in groups:
            part = part[part[m].notna() & part[p].notna()]
            if part[p].nunique() < 2:
                continue
            key = key if isinstance(key, tuple) else (key,)
            b = part.loc[lay.best_index(part[m], m)]
            row = {lay.label(k): fmt_key(v) for k, v in zip(others, key)}
            row[f"best {lay.label(p)}"] = fmt_key(b[p])
            row[lay.label(m) + lay.arrow(m)] = fmt_ms(b[m], b.get(m + "_std"), int(b["n_ok"]))
            row[f"{lay.label(p)} tried"] = ", ".join(fmt_key(v) for v in sorted(part[p].unique()))
            rows.append(row)
        if rows:
            out.append(Table(f"best-{p}", f"Best {lay.label(p)} by {lay.label(m)}", pd.DataFrame(rows),
                             f"The {lay.label(p)} with the best {lay.label(m)}{lay.arrow(m)} (mean over seeds) "
                             f"for each combination of the other swept values."))
    return out


def summary_table(lay: Analysis, summ: pd.DataFrame) -> Table:
    """Every configuration, mean ± std over its seeds; each model's best row highlighted."""
    cols = [*lay.metrics, *[c for c in VALUES if c in summ]]
    rows = []
    for _, r in summ.iterrows():
        row = {lay.label(k): fmt_key(r[k]) for k in lay.keys}
        row.update(_metric_cells(lay, r, cols, int(r["n_ok"])))
        row["seeds"] = f"{int(r['n_done'])}/{int(r['n'])}"
        rows.append(row)
    t = Table("configurations", "Every configuration (mean ± std over seeds)", pd.DataFrame(rows),
              "Green rows: each model's best configuration"
              + (f" by {lay.label(lay.primary)}{lay.arrow(lay.primary)}" if lay.primary else "")
              + ". Bold: best in column.")
    t.best_rows = {i for i, by in best_rows(lay, summ).values() if i is not None and by is not None}
    _bold_best(lay, t, summ, {lay.label(c) + ("" if c == "num_params" else lay.arrow(c)): c for c in lay.metrics})
    t.row_class = ["" if int(r["n_ok"]) else "failed" for _, r in summ.iterrows()]
    return t


def trials_table(lay: Analysis) -> Table:
    """Every trial, in configuration order, with its status, metrics and times."""
    res = trial_order(lay)
    cols = [c for c in ("trial_id", "status", "health", *lay.keys, "seed", "epoch", *lay.metrics, "train_time_s",
                        "train_cpu_s", "wall_time_s", "hostname", "error", "health_reason") if c in res]
    keyish = {"trial_id", "status", "health", "hostname", "error", "health_reason", "seed", "epoch", *lay.keys}
    frame = pd.DataFrame({lay.label(c): [(fmt_key if c in keyish else fmt)(v) for v in res[c].tolist()] for c in cols})
    if "epoch" in frame:
        frame = frame.rename(columns={"epoch": "epochs done"})
    t = Table("trials", "Every trial", frame)
    health = res["health"].astype(str) if "health" in res else pd.Series("", index=res.index)
    t.row_class = [s if s in PROBLEMS else "failed" if h == "failed" else ""
                   for s, h in zip(res["status"].astype(str), health)] if len(res) else []
    return t


def problems_table(lay: Analysis) -> Table:
    """Failed and diverged trials with their errors, one row each; then metrics that could
    not be computed, one row per distinct message (16 trials without Inception weights make
    one row naming them, not 16 copies)."""
    res = trial_order(lay)
    varied = [k for k in lay.keys if k != "model" and k in res and res[k].nunique(dropna=True) > 1]
    rows, merrs = [], {}
    for _, r in res.iterrows():
        status = str(r.get("status"))
        merr = r.get("metric_errors")
        where = lay.config_label(r, varied + (["seed"] if "seed" in r else [])) or DASH
        if status not in PROBLEMS:
            if isinstance(merr, str) and merr:
                merrs.setdefault(merr, []).append((r, status, where))
            continue
        what = r.get("error") if isinstance(r.get("error"), str) and r.get("error") else None
        if status == "diverged" and pd.notna(r.get("diverged_epoch")) and "epoch" not in str(what):
            what = f"{what or 'diverged'} (epoch {fmt_key(r['diverged_epoch'])})"
        rows.append({"trial_id": fmt_key(r.get("trial_id")), "status": status, "model": fmt_key(r.get("model")),
                     "configuration": where, "error": fmt(what) if what is not None else "(no message)"})
    failed = len(rows)
    for merr, hits in merrs.items():
        r, status, where = hits[0]
        if len(hits) > 1:
            where = f"{len(hits)} trials: " + "; ".join(h[2] for h in hits[:3]) + ("; ..." if len(hits) > 3 else "")
        rows.append({"trial_id": fmt_key(r.get("trial_id")) + (f" + {len(hits) - 1} more" if len(hits) > 1 else ""),
                     "status": ", ".join(sorted({h[1] for h in hits})),
                     "model": ", ".join(sorted({fmt_key(h[0].get("model")) for h in hits})),
                     "configuration": where, "error": f"metric errors: {merr}"})
    title = f"Failed and diverged trials ({failed})"
    n_merr = sum(map(len, merrs.values()))
    if n_merr:
        title += f" and metric errors ({n_merr} trial{'s' if n_merr > 1 else ''})"
    t = Table("problems", title, pd.DataFrame(rows),
              "Never dropped silently: every trial that did not finish cleanly, with its error.")
    t.row_class = [r["status"] if r["status"] in PROBLEMS else "warn" for r in rows]
    return t


def short(text: str, limit: int = 140) -> str:
    """``text`` cut at a word before ``limit`` characters."""
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def provenance_facts(p: dict) -> list[tuple[str, str]]:
    """The header's lines for a run's provenance (a run written before raygen kept it has none)."""
    if not p:
        return []
    commit = p.get("git_commit")
    code = f"raygen {p.get('raygen')}"
    if commit:
        code += f", git {str(commit)[:12]}" + (" with uncommitted changes" if p.get("git_dirty") else "")
    versions = ", ".join(f"{k} {p[k]}" for k in ("python", "torch", "ray", "cuda") if p.get(k))
    devices = ", ".join(map(str, p.get("driver_devices") or []))
    return [("command", str(p.get("command", ""))), ("code", code), ("versions", versions),
            ("driver", f"{p.get('driver_host', '?')} ({devices})"),
            *([("stacking", str(p["stacking"]))] if p.get("stacking") else [])]


def header_facts(lay: Analysis, run_dir, source: str, notes: list[str] = (),
                 provenance: dict | None = None) -> list[tuple[str, str]]:
    """(label, value) lines for the page header: what ran, where, when, how long, measured how;
    ``notes``: metric families that could not run in any trial (said once); ``provenance``: the
    command, code and versions that made the run."""
    res, hist = lay.results, lay.history

    def uniq(col: str, frame: pd.DataFrame = res) -> str:
        if col not in frame or not frame[col].notna().any():
            return ""
        return ", ".join(str(v) for v in sorted(frame[col].dropna().astype(str).unique()))

    facts = [("sweep", uniq("sweep") or DASH), ("run", uniq("run") or str(run_dir)), ("read from", source),
             *provenance_facts(provenance or {})]
    started = _run_start(uniq("run"))
    if started:
        facts.append(("started", started))
    counts = res["status"].value_counts() if len(res) else pd.Series(dtype=int)
    by_status = ", ".join(f"{n} {s}" for s, n in counts.items())
    facts.append(("trials", f"{len(res)}: {by_status}" if len(res) else "none yet"))
    hosts = uniq("hostname")
    nodes = res["node_ip"].nunique() if "node_ip" in res else 0
    facts.append(("where", f"{hosts or 'host not recorded'}" + (f" ({nodes} Ray node{'s' * (nodes > 1)}: "
                                                                 f"{uniq('node_ip')})" if nodes else "")))
    facts.append(("devices", uniq("device") or "not recorded in these results"))
    if uniq("train_precision"):  # one for every row of an honest comparison (engine/precision.py)
        mixed = res["train_precision"].dropna().nunique() > 1
        mixed_note = " (mixed: times and scores of different precisions are not comparable)" if mixed else ""
        facts.append(("training precision", uniq("train_precision") + mixed_note))
    for col, name in (("train_time_s", "training time"), ("wall_time_s", "trial wall time")):
        if col in res and res[col].notna().any():
            s = pd.to_numeric(res[col], errors="coerce").dropna()
            facts.append((name, (f"total {s.sum():.1f} s over {len(s)} trials; per trial median "
                                 f"{s.median():.1f} s, max {s.max():.1f} s")))
    if "stacked" in res and pd.to_numeric(res["stacked"], errors="coerce").gt(1).any():
        on = res[pd.to_numeric(res["stacked"], errors="coerce").gt(1)]
        facts.append(("stacked", f"{len(on)} of {len(res)} trials trained in {on['stack_id'].nunique()} stacks "
                                 f"(one vectorised model each, column stack_id; the numbers of separate trials "
                                 f"up to float rounding; train_time_s is each stack's time shared by its members)"))
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
    settings += [f"not measured: {short(n)}" for n in notes]  # in full under "At a glance"
    facts.append(("metric settings", "; ".join(settings) or "not recorded"))
    if lay.primary:
        direction = "lower" if lay.lower(lay.primary) else "higher"
        facts.append(("best means", f"{lay.label(lay.primary)} ({direction} is better)"))
    return facts


def _run_start(run: str) -> str:
    """Run folders are named ``YYYYmmdd-HHMMSS[-smoke]``."""
    try:
        return pd.to_datetime(run[:15], format="%Y%m%d-%H%M%S").strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, TypeError):
        return ""
