"""Lucic, Kurach, Michalski, Gelly and Bousquet 2018, "Are GANs Created Equal?": their way
of comparing models on an equal tuning budget, as a section of any run that gave every model
the same number of configurations (a sweep file's ``budget:``). The analysis itself is
``report.budget``; this is its place on the page.
"""
from __future__ import annotations

import pandas as pd

from raygen.report.analysis import OK, fmt
from raygen.report.budget import ROUNDS, curves, ranking
from raygen.report.papers.section import Section, Subject
from raygen.report.tables import Table


def _groups(lay) -> list[str]:
    res = lay.results
    return [k for k in ("model", "dataset") if k in res and res[k].nunique(dropna=True) > 0]


def _budgets(n: int) -> list[int]:
    """1, 2, 4, ... and N."""
    out = [1]
    while out[-1] * 2 < n:
        out.append(out[-1] * 2)
    return sorted({*out, n})


def _name(key: tuple) -> str:
    return " / ".join(str(k) for k in key)


class EqualBudget(Section):
    """Every model given the same number of configurations (a sweep file's ``budget:``)."""

    key, title = "budget", "Equal tuning budget (Lucic et al. 2018)"

    def applies(self, s: Subject) -> bool:
        res, metric = s.lay.results, s.lay.primary
        return bool(metric) and f"val_{metric}" in res and bool(res[f"val_{metric}"].notna().any())

    def tables(self, s: Subject) -> list[Table]:
        lay = s.lay
        metric, res = lay.primary, lay.results
        ok = res[res["status"].isin(OK)] if "status" in res else res
        group, lower = _groups(lay), lay.lower(metric)
        cs = curves(ok, group, metric, f"val_{metric}", lower)
        n = max((len(c.budgets) for c in cs.values()), default=0)
        ks = _budgets(n)
        tuned = [k for k in lay.swept if k not in group and k != "seed"]
        rows = []
        for key, c in cs.items():
            part = ok[(ok[group] == pd.Series(key, index=group)).all(1)]
            best = part.loc[part[f"val_{metric}"].idxmin() if lower else part[f"val_{metric}"].idxmax()] \
                if part[f"val_{metric}"].notna().any() else None
            row = {"": _name(key), "trials": len(part)}
            for k in ks:
                i = min(k, len(c.budgets)) - 1
                row[f"k={k}"] = f"{fmt(c.mean[i])} [{fmt(c.low[i])}, {fmt(c.high[i])}]"
            row["chosen (best on validation)"] = lay.config_label(best, tuned) if best is not None else "—"
            if best is not None and "health" in best and isinstance(best["health"], str):
                row["health"] = best["health"] + (f": {best['health_reason']}" if best.get("health_reason") else "")
            rows.append(row)
        order = [{"budget": f"k={k}", "ranking (< separable at 95%, ≈ not)": " ".join(
            f"{_name(g)}{' <' if apart else ' ≈'}" for g, apart in ranking(cs, k, lower)).rstrip(" <≈")}
            for k in ks]
        caption = (f"{lay.label(metric)} on the held-out split of the configuration chosen on the validation split "
                   f"(val_{metric}) among k of each model's trials: mean over {ROUNDS} bootstrap draws of k "
                   f"trials, [2.5%, 97.5%]. Rankings change with the budget: compare models at the same k.")
        return [Table("budget", self.title, pd.DataFrame(rows), caption=caption),
                Table("budget-ranking", "Ranking at each budget", pd.DataFrame(order),
                      caption="Models in order at each budget; '<': the bands of the two neighbours do not overlap. At "
                              "k = N (all of a model's trials) a band is one trial's score: never '<' there.")]


SECTIONS = (EqualBudget(),)
