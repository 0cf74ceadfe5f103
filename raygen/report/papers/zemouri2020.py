"""Zemouri 2020's question, "which β?", answered from a run's metrics.

Section 4.4 of Zemouri 2020 reads Figure 9 by eye in three regimes of the adversarial
weight β: below ε1 reconstructions are blurred; between ε1 and ε2 they are sharper and
still match their inputs; above ε2 the generative effect dominates and many stop matching
(a 3 decoded as a 7). Two measured columns stand for the two eyes:

- ``recon_sharpness``: edge energy of the reconstructions over the inputs' (1 = as sharp
  as the data; ``scores.sharpness``);
- ``recon_class_acc``: the frozen classifier's accuracy on the reconstructions' codes
  (do they still show the input's class).

The rule, stated in the table's caption: a β "keeps the class" while its recon class
accuracy is within ``TOLERANCE`` of the smallest β's; the pick is the sharpest β that
keeps it, and ε2 is the first β that does not. Pure pandas, like the other report tables.

Figure 9 itself (the same test images reconstructed by every β × γ setting, which SAVAE
trials save) and the titles of Figures 7 and 8's images are this paper's too.
"""
from __future__ import annotations

import pandas as pd

from raygen.report.analysis import Analysis, fmt, fmt_key
from raygen.report.images import reconstruction_grids
from raygen.report.papers.section import Derived, Section, Subject
from raygen.report.tables import Table

SHARP, CLASS = "recon_sharpness", "recon_class_acc"
TOLERANCE = 0.05  # recon class accuracy may fall this much below the smallest β's
SHARPER = 0.10  # "clearly sharper": edge energy at least this much above the smallest β's
# Zemouri 2020's two thresholds on β, measured: epsilon1, the first β whose reconstructions are
# clearly sharper than the smallest β's; epsilon2, the last β that keeps the class.
THRESHOLDS = ("epsilon1", "epsilon2")
FOCUS = ("recon_mse", SHARP, CLASS, "latent_class_consistency")  # the figures' metrics when β is swept


def applies(lay: Analysis) -> bool:
    return "beta" in lay.swept and SHARP in lay.metrics and CLASS in lay.metrics


def figure_metrics(lay: Analysis) -> list[str] | None:
    """The metrics to draw against the swept parameters: Zemouri 2020's trade-off when β is swept."""
    return [m for m in FOCUS if m in lay.metrics] if applies(lay) else None


def _groups(lay: Analysis, summ: pd.DataFrame):
    others = [k for k in lay.keys if k != "beta" and summ[k].nunique(dropna=False) > 1]
    groups = summ.groupby(others, dropna=False, sort=True) if others else [((), summ)]
    for key, part in groups:
        part = part[part["beta"].notna() & part[SHARP].notna() & part[CLASS].notna()].sort_values("beta")
        if part["beta"].nunique() >= 2:
            key = key if isinstance(key, tuple) else (key,)
            yield {lay.label(k): fmt_key(v) for k, v in zip(others, key)}, part


def verdict(part: pd.DataFrame) -> dict:
    """For one group's β values (sorted): the pick, ε2, and the numbers behind them."""
    base = float(part[CLASS].iloc[0])
    keeps = part[part[CLASS] >= base - TOLERANCE]
    lost = part[part[CLASS] < base - TOLERANCE]
    pick = keeps.loc[keeps[SHARP].idxmax()]
    return {"pick": float(pick["beta"]), "pick_sharp": float(pick[SHARP]), "pick_class": float(pick[CLASS]),
            "base_beta": float(part["beta"].iloc[0]), "base_sharp": float(part[SHARP].iloc[0]),
            "base_class": base, "lost_from": float(lost["beta"].iloc[0]) if len(lost) else None}


def threshold(trials: pd.DataFrame, name: str) -> float | None:
    """``epsilon1`` or ``epsilon2`` from ``trials`` of one group (all but β fixed), each β's
    measures averaged over its seeds."""
    if not {"beta", SHARP, CLASS} <= set(trials.columns):
        return None
    part = trials[["beta", SHARP, CLASS]].apply(pd.to_numeric, errors="coerce").dropna()
    part = part.groupby("beta", as_index=False).mean().sort_values("beta")
    if len(part) < 2:
        return None
    if name == "epsilon1":
        sharper = part[(part["beta"] > part["beta"].iloc[0]) & (part[SHARP] >= (1 + SHARPER) * part[SHARP].iloc[0])]
        return float(sharper["beta"].iloc[0]) if len(sharper) else None
    keeps = part[part[CLASS] >= float(part[CLASS].iloc[0]) - TOLERANCE]
    lost = part[part[CLASS] < float(part[CLASS].iloc[0]) - TOLERANCE]
    if not len(lost):  # no β tried lost the class: ε2 lies beyond the grid, not at its last β
        return None
    before = keeps[keeps["beta"] < lost["beta"].iloc[0]]
    return float(before["beta"].iloc[-1]) if len(before) else None


def regime_table(lay: Analysis, summ: pd.DataFrame) -> Table | None:
    """One row per (latent size, γ, ...): each β's "sharpness / class acc.", the pick in
    bold, the β values whose reconstructions lost their class in red."""
    if not applies(lay) or not len(summ):
        return None
    rows, best, bad = [], set(), set()
    for i, (key, part) in enumerate(_groups(lay, summ)):
        v = verdict(part)
        row = dict(key)
        for _, r in part.iterrows():
            col = f"β={fmt_key(r['beta'])}"
            row[col] = f"{fmt(r[SHARP], 3)} / {fmt(r[CLASS], 3)}"
            if r["beta"] == v["pick"]:
                best.add((i, col))
            if r[CLASS] < v["base_class"] - TOLERANCE:
                bad.add((i, col))
        row["pick"] = fmt_key(v["pick"])
        row["class lost from"] = "—" if v["lost_from"] is None else f"β={fmt_key(v['lost_from'])}"
        rows.append(row)
    if not rows:
        return None
    caption = (f"Each cell: recon. sharpness (edge energy over the inputs'; 1 = as sharp as the data) / recon. "
               f"class acc. (the frozen classifier on the reconstructions). Red: the class is lost (more than "
               f"{TOLERANCE:.2f} below the smallest β's). Bold and 'pick': the sharpest β that keeps the class, "
               "Zemouri 2020's ε1 ≤ β ≤ ε2 regime (section 4.4).")
    t = Table("beta-regimes", "Which β? Sharpness against faithfulness (Zemouri 2020 section 4.4)",
              pd.DataFrame(rows).fillna("—"), caption, best_cells=best, bad_cells=bad)
    return t


def headline(lay: Analysis, summ: pd.DataFrame) -> list[str]:
    """A sentence per group: how sharp the pick is against the smallest β, and where ε2 lies."""
    if not applies(lay) or not len(summ):
        return []
    out = []
    for key, part in _groups(lay, summ):
        v = verdict(part)
        where = ", ".join(f"{k}={x}" for k, x in key.items())
        s = (f"{where + ': ' if where else ''}pick β={fmt_key(v['pick'])} (sharpness {fmt(v['pick_sharp'], 3)} "
             f"against {fmt(v['base_sharp'], 3)} at β={fmt_key(v['base_beta'])}; class acc. {fmt(v['pick_class'], 3)})")
        s += (f"; reconstructions lose their class from β={fmt_key(v['lost_from'])}." if v["lost_from"] is not None
              else "; no β tried lost the class.")
        out.append(s)
    return out


class WhichBeta(Section):
    """Section 4.4's question wherever β is swept; its table and sentences need the two measures."""

    axes = ("beta", "gamma", "latent_dim")  # β first: the question; then the paper's other axes
    derived = {name: Derived("beta", threshold) for name in THRESHOLDS}

    def applies(self, s: Subject) -> bool:
        return "beta" in s.lay.swept

    def glance(self, s: Subject) -> list[Table]:
        t = regime_table(s.lay, s.summ)
        return [t] if t else []

    def headline(self, s: Subject) -> list[str]:
        return headline(s.lay, s.summ)

    def figure_metrics(self, s: Subject) -> list[str] | None:
        return figure_metrics(s.lay)


# Figure 9's rows and columns (β, γ), else the sweep's other SAVAE parameters.
GRID_ROWS = ("beta", "alpha", "latent_dim")
GRID_COLS = ("gamma", "latent_dim", "alpha")
FIXED, INPUTS = "recon_fixed_png", "fixed_inputs_png"  # the images SAVAE saves for Figure 9
GRID_CAPTION = ('<p class="caption">Top row: the fixed test inputs. Each cell: their reconstruction by that setting '
                "(lowest seed); green frame: the best setting by the primary metric. A red frame round one image "
                "(SAVAE): its reconstruction changed class, Class(Ẑ) ≠ Class(Z), as in Zemouri 2020's Figure 9.</p>")


def grid_axes(lay: Analysis) -> tuple[str | None, str | None]:
    """(row parameter, column parameter) of the Figure 9 grid."""
    swept = lay.swept
    row = next((p for p in GRID_ROWS if p in swept), swept[0] if swept else None)
    col = next((p for p in GRID_COLS if p in swept and p != row), None)
    return row, col


class Figure9(Section):
    key, title = "grid", "The same test images reconstructed by every setting (Zemouri 2020 Figure 9)"
    axes = WhichBeta.axes
    images = (FIXED, INPUTS)
    gallery_titles = {
        "latent_scatter_png": "2-D latent space of the test images, by class (Zemouri 2020 Figure 7)",
        "class_decodes_png": "Decodes of each class's latent region (Zemouri 2020 Figure 8)",
    }

    def applies(self, s: Subject) -> bool:
        res = s.lay.results
        return FIXED in res and bool(res[FIXED].notna().any())

    def figure(self, s: Subject) -> str:
        grid = reconstruction_grids(s.lay, s.files, FIXED, INPUTS, *grid_axes(s.lay))
        return GRID_CAPTION + grid if grid else ""


SECTIONS = (WhichBeta(), Figure9())
