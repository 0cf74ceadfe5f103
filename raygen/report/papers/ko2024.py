"""Ko, Ko and Kim 2024 (GAE; ``sweeps/gae_table3.yaml``, ``sweeps/gae_cosine.yaml``): Tables 3
and 4 as dataset × model tables of each model's best configuration (the quality metric,
the total training time), and the title of Figure 4's cosine-curve images.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from raygen.report.analysis import DASH, Analysis, best_rows, fmt_ms
from raygen.report.papers import chaturvedula
from raygen.report.papers.section import Section, Subject
from raygen.report.tables import Table


def applies(lay: Analysis) -> bool:
    """Two models or more on some dataset; with one dataset a GAN vs VAE run's own table
    (Chaturvedula's) already is the one row this would show."""
    models, datasets = lay.models(), lay.datasets()
    return len(models) >= 2 and bool(datasets) and not (len(datasets) < 2 and chaturvedula.applies(lay))


def model_dataset_tables(lay: Analysis, summ: pd.DataFrame) -> list[Table]:
    """Tables 3 and 4: dataset × model, the quality metric and the total training time of each
    model's best configuration; the best of each row in bold."""
    if not applies(lay):
        return []
    m = lay.primary
    specs = ([(m, f"{lay.label(m)} by dataset and model (Ko et al. 2024 Table 3 form)")] if m else []) + [
        (lay.time_col, f"Total {lay.time_words()} by dataset and model (Ko et al. 2024 Table 4 form)")]
    return [t for col, title in specs if (t := _table(lay, summ, col, title)) is not None]


def _table(lay: Analysis, summ: pd.DataFrame, col: str, title: str) -> Table | None:
    """One of the two tables (None when nothing is measured yet)."""
    rows, raw = [], []
    for ds in lay.datasets():
        part = summ[summ["dataset"].astype(str) == ds].reset_index(drop=True)
        best = best_rows(lay, part)
        row, vals = {"dataset": ds}, {}
        for model in lay.models():
            i = best.get(model, (None, None))[0]
            r = part.iloc[i] if i is not None else None
            row[model] = fmt_ms(r[col], r.get(col + "_std"), int(r["n_ok"])) if r is not None and col in r else DASH
            vals[model] = r[col] if r is not None and col in r else np.nan
        rows.append(row)
        raw.append(vals)
    if all(pd.isna(v) for vals in raw for v in vals.values()):
        return None
    t = Table(f"table-{col}", title, pd.DataFrame(rows),
              "Each cell: the model's best configuration on that dataset, mean ± std over seeds. "
              f"Bold: best in the row ({'lower' if lay.lower(col) else 'higher'} is better).")
    for i, vals in enumerate(raw):
        s = pd.Series(vals, dtype=float)
        if s.notna().any():
            target = s.min() if lay.lower(col) else s.max()
            t.best_cells |= {(i, k) for k, v in s.items() if v == target}
    return t


class ModelByDataset(Section):
    key, title = "paper", "Model × dataset (Ko et al. 2024 Tables 3 and 4)"
    gallery_titles = {"cosine_png": "Cosine curve: data and generated points (Ko et al. 2024 Figure 4)"}

    def applies(self, s: Subject) -> bool:
        return applies(s.lay)

    def tables(self, s: Subject) -> list[Table]:
        return model_dataset_tables(s.lay, s.summ)


SECTIONS = (ModelByDataset(),)
