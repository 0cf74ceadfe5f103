"""The report's answer at a glance: which configuration is best, by how much over the
runner-up and whether that margin is real with the seeds run; a run where every trial
failed says so in red; a smoke run says it is no comparison."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from raygen.report.analysis import OK, Analysis, fmt, fmt_ms
from raygen.report.papers.comparison import t95


@dataclass
class Verdict:
    lines: list[str]
    bad: bool = False  # shown in red: nothing to compare
    banner: str = ""  # above everything: e.g. a smoke run
    notes: list[str] = field(default_factory=list)


def smoke_banner(res: pd.DataFrame) -> str:
    """Run folders of ``--smoke`` end in ``-smoke``: say how small its trials were (and which
    runs, when only some of the runs combined are smoke runs)."""
    runs = res["run"].astype(str) if "run" in res else pd.Series(dtype=str)
    smoke = sorted(set(runs[runs.str.endswith("-smoke")]))
    if not smoke:
        return ""
    if len(smoke) < runs.nunique():
        return (f"Includes smoke runs (--smoke): {', '.join(smoke)}. Their trials are a few batches each and "
                f"their numbers are no comparison with the others'.")

    def most(col: str) -> str:
        v = pd.to_numeric(res[col], errors="coerce").dropna() if col in res else pd.Series(dtype=float)
        return fmt(v.max()) if len(v) else "?"

    batches = most("max_batches")
    return (f"Smoke run (--smoke): {most('epoch')} epoch(s) of at most {batches} batches per trial, "
            f"{most('eval_samples')} evaluation samples. It checks that the sweep runs end to end; its "
            f"numbers are not a comparison of the models.")


def failures(res: pd.DataFrame) -> list[str]:
    """Identical errors collapsed: ``3 trials: <error>``, most frequent first."""
    bad = res[~res["status"].isin(OK)] if "status" in res else res
    errs = bad["error"].fillna(bad["status"].astype(str)) if "error" in bad else bad["status"].astype(str)
    return [f"{n} trial{'s' * (n > 1)}: {e}" for e, n in errs.astype(str).value_counts().items()]


def margin(best: pd.Series, other: pd.Series, m: str) -> tuple[float, str]:
    """(difference of means, what the seeds say of it): a Welch-style 95% t interval of the
    difference when both have at least two seeds (degrees of freedom: the smaller n - 1,
    conservative)."""
    diff = float(other[m] - best[m])
    n1, n2 = int(best["n_ok"]), int(other["n_ok"])
    s1, s2 = best.get(m + "_std"), other.get(m + "_std")
    if n1 < 2 or n2 < 2 or pd.isna(s1) or pd.isna(s2):
        return diff, "one seed for at least one of them: whether the margin is real cannot be told"
    half = t95(min(n1, n2) - 1) * math.sqrt(s1**2 / n1 + s2**2 / n2)
    lo, hi = diff - half, diff + half
    said = f"95% interval of the difference [{fmt(lo)}, {fmt(hi)}] over {min(n1, n2)}+ seeds"
    return diff, said + ("" if lo > 0 or hi < 0 else ": not separable with the seeds run")


def verdict(lay: Analysis, summ: pd.DataFrame) -> Verdict:
    res, m = lay.results, lay.primary
    if not len(res):
        return Verdict(["No trial has reported yet."])
    banner = smoke_banner(res)
    if "status" in res and not res["status"].isin(OK).any():
        return Verdict([f"Every trial failed or diverged ({len(res)} of {len(res)}); nothing to compare.",
                        *failures(res)[:5]], bad=True, banner=banner)
    if not m or not len(summ) or not summ[m].notna().any():
        ranked = ", ".join(c.name for c in lay.columns.values() if c.rank) or "the declared metrics"
        return Verdict([f"No quality metric was measured (none of {ranked}); see the tables for losses and times."],
                       banner=banner)
    ranked = summ[summ[m].notna()].sort_values(m, ascending=lay.lower(m))
    b = ranked.iloc[0]
    out = [f"Best by {lay.label(m)}{lay.arrow(m)}: {describe(lay, b)}, {lay.label(m)} "
           f"{fmt_ms(b[m], b.get(m + '_std'), int(b['n_ok']))}"
           + (f" over {int(b['n_ok'])} seeds." if b["n_ok"] > 1 else " (one seed).")]
    rest = ranked.iloc[1:]
    if "model" in ranked and ranked["model"].nunique() > 1:  # the runner-up is the best of another model
        rest = rest[rest["model"] != b["model"]]
    if len(rest):
        r = rest.iloc[0]
        diff, said = margin(b, r, m)
        out.append(f"Runner-up: {describe(lay, r)}, {fmt_ms(r[m], r.get(m + '_std'), int(r['n_ok']))}; "
                   f"margin {fmt(abs(diff))} ({said}).")
    if "model" in summ:
        unranked = sorted(set(summ["model"].dropna().astype(str)) - set(ranked["model"].dropna().astype(str)))
        if unranked:
            out.append(f"Not ranked by {lay.label(m)} (no value): {', '.join(unranked)}.")
    if banner:
        out = [f"Smoke run: not a comparison. {out[0]}", *out[1:]]
    return Verdict(out, banner=banner)


def describe(lay: Analysis, row: pd.Series) -> str:
    """``vae_conv (latent_dim=10)``: the model and the values that tell its configurations apart."""
    model_rows = lay.results[lay.results["model"] == row["model"]] if "model" in row else lay.results
    where = lay.config_label(row, ([k for k in ("dataset",) if len(lay.datasets()) > 1]) + lay.swept_in(model_rows))
    return f"{row.get('model', 'the best configuration')}" + (f" ({where})" if where else "")
