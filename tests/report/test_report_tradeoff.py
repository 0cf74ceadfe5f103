"""Zemouri 2020's "which β?" table and sentences, on hand-made SAVAE-like results."""
from __future__ import annotations

import pandas as pd

from raygen.report.analysis import summarize
from raygen.report.page import table_html, table_md
from raygen.report.papers import zemouri2020 as tradeoff

from report_fixtures import analyze, base_row

BETAS = (0.0, 0.003, 0.01, 0.05, 0.1)


def rows(with_sharpness: bool = True) -> list[dict]:
    """Sharpness grows with β; at γ = 0 the class is lost from β = 0.05, at γ = 0.1 never."""
    out, i = [], 0
    for gamma in (0.0, 0.1):
        for b in BETAS:
            for seed in (0, 1):
                lost = gamma == 0 and b >= 0.05
                r = base_row(i, model="savae", beta=b, gamma=gamma, latent_dim=100, seed=seed,
                             recon_mse=0.05 + b, recon_class_acc=(0.78 if lost else 0.98) - 0.01 * seed,
                             latent_class_consistency=0.99)
                if with_sharpness:
                    r["recon_sharpness"] = 0.6 + 3 * b - (0.05 if gamma else 0)
                out.append(r)
                i += 1
    out.append(base_row(i, model="savae", beta=0.01, gamma=0.0, latent_dim=100, seed=2, status="failed",
                        error="RuntimeError: boom", recon_mse=None))
    return out


def layout(r):
    lay = analyze(pd.DataFrame(r), pd.DataFrame(columns=["trial_id", "epoch", "loss"]))
    return lay, summarize(lay)


def test_the_pick_is_the_sharpest_beta_that_keeps_the_class():
    lay, summ = layout(rows())
    t = tradeoff.regime_table(lay, summ)
    f = t.frame.set_index("γ")
    assert f.loc["0", "pick"] == "0.01" and f.loc["0", "class lost from"] == "β=0.05"
    assert f.loc["0.1", "pick"] == "0.1" and f.loc["0.1", "class lost from"] == "—"
    assert f.loc["0", "β=0.01"] == "0.630 / 0.975"  # mean over the two completed seeds
    row0 = list(t.frame["γ"]).index("0")
    assert (row0, "β=0.01") in t.best_cells
    assert t.bad_cells == {(row0, "β=0.05"), (row0, "β=0.1")}
    assert '<td class="bad">0.750 / 0.775</td>' in table_html(t) and "✗ 0.750 / 0.775" in table_md(t)
    said = tradeoff.headline(lay, summ)
    assert said[0].startswith("γ=0: pick β=0.01 (sharpness 0.630 against 0.600 at β=0")
    assert said[0].endswith("lose their class from β=0.05.") and said[1].endswith("no β tried lost the class.")
    assert tradeoff.figure_metrics(lay) == ["recon_mse", "recon_sharpness", "recon_class_acc",
                                            "latent_class_consistency"]


def test_runs_without_the_two_measures_get_no_verdict():
    lay, summ = layout(rows(with_sharpness=False))
    assert tradeoff.regime_table(lay, summ) is None and tradeoff.headline(lay, summ) == []
    assert tradeoff.figure_metrics(lay) is None
    lay, summ = layout([r for r in rows() if r["beta"] == 0.01])  # β not swept
    assert tradeoff.regime_table(lay, summ) is None


def test_epsilon2_is_not_placed_at_the_grids_end_when_no_beta_lost_the_class():
    from raygen.report.papers.zemouri2020 import CLASS, SHARP, threshold

    kept = pd.DataFrame({"beta": [0.0, 0.005], SHARP: [0.56, 0.56], CLASS: [0.947, 0.951]})
    assert threshold(kept, "epsilon2") is None and threshold(kept, "epsilon1") is None
    lost = pd.DataFrame({"beta": [0.0, 0.005, 0.1], SHARP: [0.56, 0.56, 0.8], CLASS: [0.95, 0.95, 0.6]})
    assert threshold(lost, "epsilon2") == 0.005 and threshold(lost, "epsilon1") == 0.1
