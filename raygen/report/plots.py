"""The report's plots, drawn with matplotlib's Agg canvas (no pyplot, no display, no global
backend switch) and returned as PNG bytes for embedding. Each returns None when the run
holds nothing to draw, so a partial or all-failed run just has fewer figures.
"""
from __future__ import annotations

import functools
import io

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from raygen.report.analysis import OK, Analysis, fmt, fmt_key, trial_order

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f", "#393b79", "#ad494a", "#637939", "#e7969c", "#7b4173", "#3182bd"]
MARKERS = "osD^vP*Xh<>p"


def literal_text(draw):
    """Labels come from result values (model names, settings, errors): draw them as written,
    never as matplotlib mathtext (``$...$`` would be parsed, and fail or render as math)."""
    @functools.wraps(draw)
    def wrapped(*args, **kwargs):
        with matplotlib.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)
    return wrapped


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return buf.getvalue()


def model_colors(lay: Analysis) -> dict[str, str]:
    """One color per model, the same in every figure."""
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(lay.models())}


def _xscale(ax, xs: np.ndarray) -> None:
    """Log axes for values spanning over a decade (β from 0.001 to 0.1, latent 2 to 32);
    symlog when 0 is one of them; ticks at exactly the values tried."""
    xs = np.unique(xs)
    pos = xs[xs > 0]
    if len(pos) >= 2 and not (xs < 0).any() and pos.max() / pos.min() >= 10:
        if (xs == 0).any():
            ax.set_xscale("symlog", linthresh=float(pos.min()), linscale=0.5)
        else:
            ax.set_xscale("log")
    if len(xs) <= 12:
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticks(xs, [fmt_key(float(x)) for x in xs])


def _grid(n: int, width: float = 4.6, height: float = 3.4) -> tuple[Figure, list]:
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n)]
    return fig, axes


def lacks(lay: Analysis, model, param: str) -> bool:
    """``model`` never varies ``param`` in this run: a default it carries (GANs' latent size
    100), not a value the sweep chose for it."""
    return model is not None and param not in lay.swept_in(lay.results[lay.results["model"] == model])


@literal_text
def metric_vs_param(lay: Analysis, summ: pd.DataFrame, param: str, metrics: list[str] | None = None,
                    max_metrics: int = 3) -> bytes | None:
    """Quality metrics (mean ± std over seeds; ``metrics``, else the primary and the next
    ones) against one swept parameter, one line per combination of the other swept values
    (β per γ and latent size; latent size per model)."""
    metrics = metrics or list(dict.fromkeys(m for m in [lay.primary, *lay.metrics] if m))[:max_metrics]
    if not metrics or param not in summ:
        return None
    others = [k for k in lay.keys if k != param and summ[k].nunique(dropna=False) > 1]
    numeric = pd.api.types.is_numeric_dtype(summ[param])
    cats = [] if numeric else sorted(summ[param].dropna().astype(str).unique())
    groups = list(summ.groupby(others, dropna=False, sort=True)) if others else [((), summ)]
    fig, axes = _grid(len(metrics))
    colors = model_colors(lay) if others == ["model"] else {}
    drawn = False
    for ax, m in zip(axes, metrics):
        shown = []
        for i, (key, part) in enumerate(groups):
            part = part[part[m].notna() & part[param].notna()].sort_values(param)
            key = key if isinstance(key, tuple) else (key,)
            model = key[others.index("model")] if "model" in others else None
            if not len(part) or (len(groups) > 1 and lacks(lay, model, param)):
                continue  # e.g. GANs, whose latent size is fixed at 100, on a latent-size plot
            name = ", ".join(f"{lay.label(k)}={fmt_key(v)}" if k != "model" else str(v)
                             for k, v in zip(others, key)) or m
            xs = part[param].to_numpy(float) if numeric else np.array([cats.index(str(v)) for v in part[param]])
            shown += list(xs)
            ax.errorbar(xs, part[m], yerr=part[m + "_std"].fillna(0) if m + "_std" in part else None,
                        marker=MARKERS[i % len(MARKERS)], color=colors.get(name, PALETTE[i % len(PALETTE)]), capsize=3,
                        label=name)
            drawn = True
        ax.set_xlabel(lay.label(param))
        ax.set_ylabel(lay.label(m) + lay.arrow(m))
        ax.grid(alpha=0.3)
        if numeric and shown:
            _xscale(ax, np.array(shown, dtype=float))
        else:
            ax.set_xticks(range(len(cats)), cats, rotation=20)
    if not drawn:
        return None
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), fontsize=9, frameon=False)
    fig.suptitle(f"Metrics against {lay.label(param)} (mean ± std over seeds)")
    return png(fig)


@literal_text
def pareto(lay: Analysis, summ: pd.DataFrame) -> bytes | None:
    """Quality against training time, one point per configuration (mean ± std over its
    seeds); the line joins the configurations no other beats on both (faster and better).
    Front points are numbered and named in a key below the axes, so no label overlaps."""
    m = lay.primary
    if not m or m not in summ or "train_time_s" not in summ:
        return None
    pts = summ[(summ["n_ok"] > 0) & summ[m].notna() & summ["train_time_s"].notna()]
    if not len(pts):
        return None
    colors = model_colors(lay)
    fig = Figure(figsize=(7.5, 5.2), layout="constrained")
    ax = fig.add_subplot()
    for model, part in (pts.groupby("model") if "model" in pts else [("configurations", pts)]):
        ax.errorbar(part["train_time_s"], part[m], yerr=part[m + "_std"].fillna(0) if m + "_std" in part else None,
                    xerr=part["train_time_s_std"].fillna(0) if "train_time_s_std" in part else None, fmt="o",
                    markersize=6, color=colors.get(str(model), PALETTE[0]), label=str(model), alpha=0.85, capsize=2)
    lower = lay.lower(m)
    front, best = [], None
    for _, r in pts.sort_values(["train_time_s", m], ascending=[True, lower]).iterrows():
        if best is None or (r[m] < best if lower else r[m] > best):
            front.append(r)
            best = r[m]
    ax.step([r["train_time_s"] for r in front], [r[m] for r in front], where="post", color="black", linewidth=1,
            alpha=0.6, label="Pareto front")
    key = []
    for i, r in enumerate(front, 1):
        ax.annotate(str(i), (r["train_time_s"], r[m]), textcoords="offset points", xytext=(4, 4), fontsize=8,
                    fontweight="bold")
        model_rows = lay.results[lay.results["model"] == r.get("model")] if "model" in r else lay.results
        where = lay.config_label(r, lay.swept_in(model_rows))
        key.append(f"{i}: {r.get('model', '')}{f' ({where})' if where else ''}  {fmt(r[m])}, "
                   f"{fmt(r['train_time_s'])} s")
    ax.set_xlabel("training time per configuration (s, mean over seeds)")
    ax.set_ylabel(lay.label(m) + lay.arrow(m) + " (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(f"{lay.label(m)} against training time")
    shown = key[:12] + ([f"... {len(key) - 12} more on the front"] if len(key) > 12 else [])
    fig.text(0.01, -0.01, "Pareto front: " + "   ".join(shown), fontsize=7.5, ha="left", va="top", wrap=True)
    return png(fig)


@literal_text
def loss_curves(lay: Analysis, max_legend: int = 10) -> bytes | None:
    """Per-epoch training loss of every trial, one panel per model, one color per
    configuration (its seeds share it)."""
    hist = lay.history
    col = "loss" if "loss" in hist else next((c for c in hist.columns if str(c).endswith("loss")), None)
    if col is None or "trial_id" not in hist or "epoch" not in hist or not hist[col].notna().any():
        return None
    res = trial_order(lay)
    keys = [k for k in lay.keys if k in res]
    models = lay.models() or [None]
    fig, axes = _grid(len(models), 4.8, 3.3)
    for ax, model in zip(axes, models):
        trials = res[res["model"] == model] if model is not None else res
        params = lay.swept_in(trials)
        configs = list(dict.fromkeys(lay.config_label(r, params) for _, r in trials.iterrows()))
        seen = set()
        for _, r in trials.iterrows():
            h = hist[hist["trial_id"] == r["trial_id"]].sort_values("epoch")
            h = h[h[col].notna()]
            if not len(h):
                continue
            name = lay.config_label(r, params) or str(model)
            i = configs.index(lay.config_label(r, params))
            show = name not in seen and len(seen) < max_legend
            seen.add(name)
            ax.plot(h["epoch"], h[col], marker="o" if len(h) < 4 else None, markersize=4, linewidth=1.2,
                    color=PALETTE[i % len(PALETTE)], alpha=0.8, label=name if show else None)
        ax.set_title(str(model) if model is not None else col, fontsize=10)
        epochs = sorted(hist.loc[hist["trial_id"].isin(trials["trial_id"]), "epoch"].dropna().unique())
        if 0 < len(epochs) <= 12:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"{col} (mean over the epoch's batches)")
        ax.grid(alpha=0.3)
        if seen and keys:
            ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    fig.suptitle(f"Training {col} against epoch (one line per trial; a configuration's seeds share a color)")
    return png(fig)


def best_index(lay: Analysis, part: pd.DataFrame, metric: str | None):
    """Row label of the best trial in ``part`` by ``metric`` (None when it cannot tell)."""
    if not metric or metric not in part or not part[metric].notna().any():
        return None
    ok = part[part["status"].isin(OK)] if "status" in part else part
    return lay.best_index(ok[metric], metric) if ok[metric].notna().any() else None
