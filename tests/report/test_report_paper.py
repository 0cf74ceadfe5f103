"""The paper beside raygen (raygen.report.papers.comparison) on hand-made runs: each published value
with raygen's figure and a comparability verdict, rank agreement and time ratios."""
from __future__ import annotations

import pandas as pd
import pytest

from raygen.core.errors import RaygenError
from raygen.record.published import parse
from raygen.record.published import to_json as paper_json
from raygen.report.page import write_report
from raygen.report.papers.comparison import kendall_tau, paper_tables

from report_fixtures import analyze, base_row, write_run

BLOCK = {
    "cite": "Ko, Ko and Kim 2024",
    "protocol": {"extractor": "inception", "samples": 10000, "reference": "test", "train_split": "train",
                 "epochs": 30, "hardware": "NVIDIA A100"},
    "tables": [
        {"where": "Table 3", "metric": "fid", "rows": "dataset", "columns": "model",
         "values": {"mnist": {"vae": 123.44, "beta_vae": 51.53, "wae": 89.79, "gae": 44.30}}},
        {"where": "Table 4", "metric": "train_time_s", "rows": "dataset", "columns": "model", "ratio_to": "vae",
         "values": {"mnist": {"vae": 135.04, "gae": 125.22}}},
    ],
}
# raygen's classifier FIDs, in the paper's order but for one swap (wae, beta_vae), two seeds each
CLS_FID = {"vae": 90.0, "beta_vae": 40.0, "wae": 35.0, "gae": 20.0}


def rows(**over) -> list[dict]:
    out, i = [], 0
    for model, fid in CLS_FID.items():
        for seed in (0, 1):
            kw = {"eval_split": "test[holdout 1000]", "train_split": "test[minus holdout 1000]", **over}
            out.append(base_row(i, model=model, seed=seed, cls_fid=fid + seed, cls_samples=10000, epochs=30,
                                train_time_s=100.0 if model == "vae" else 50.0, **kw))
            i += 1
    return out


def tables(results: list[dict]):
    lay = analyze(pd.DataFrame(results))
    return paper_tables(lay, None, parse(BLOCK, "test"))


def test_every_published_value_has_raygens_figure_and_a_verdict():
    comparison, ranks = tables(rows())
    f = comparison.frame
    assert len(f) == 6 and list(f["source"]).count("Table 3") == 4
    vae = f[(f.source == "Table 3") & f.setting.str.contains("model=vae")].iloc[0]
    assert vae["paper"] == "123.44" and vae["raygen"].startswith("90.50 ± ")
    assert "(FID (domain classifier))" in vae["raygen"]
    assert vae["seeds"] == 2 and vae["95% interval"].startswith("[")
    # computed differently: said, never silently beside the paper's
    assert vae["comparable?"].startswith("not comparable: FID on the domain classifier's features")
    assert "reference test[holdout 1000] (paper: test)" in vae["comparable?"]
    assert "train split test[minus holdout 1000] (paper: train)" in vae["comparable?"]
    # times on other hardware: ratios
    gae_time = f[(f.source == "Table 4") & f.setting.str.contains("model=gae")].iloc[0]
    assert "(0.93× vae)" in gae_time["paper"] and "(0.50× vae)" in gae_time["raygen"]
    assert "hardware differs (paper: NVIDIA A100)" in gae_time["comparable?"]
    tau = ranks.frame.iloc[0]
    expected = kendall_tau([123.44, 51.53, 89.79, 44.30], [90.5, 40.5, 35.5, 20.5])
    assert tau["columns ranked"] == 4 and tau["Kendall τ"] == f"{expected:+.2f}" and 0 < expected < 1


def test_the_same_protocol_is_said_so_and_a_missing_setting_is_not_measured():
    same = rows(eval_split="test", train_split="train", fid=50.0, fid_samples=10000)
    f = tables([r for r in same if r["model"] != "wae"])[0].frame
    gae = f[(f.source == "Table 3") & f.setting.str.contains("model=gae")].iloc[0]
    assert gae["comparable?"] == "same protocol" and gae["raygen"] == "50.00"
    wae = f[(f.source == "Table 3") & f.setting.str.contains("model=wae")].iloc[0]
    assert wae["raygen"] == "not measured" and wae["comparable?"] == "not measured in this run"


def test_kendall_tau():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [40, 30, 20, 10]) == -1.0
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)


@pytest.mark.parametrize("block, message", [
    ({"protocol": {}}, "must be a mapping with cite"),
    ({"cite": "x", "values": [{"where": "T1", "metric": "fid"}]}, "lacks value"),
    ({"cite": "x", "values": [{"where": "T1", "metric": "fid", "value": [3, 1]}]}, "lo > hi"),
    ({"cite": "x", "values": [{"where": "T1", "metric": "fid", "value": "high"}]}, "is not a number"),
    ({"cite": "x", "protocol": {"gpu": "a100"}, "values": []}, "protocol keys gpu unknown"),
    ({"cite": "x"}, "no published values"),
])
def test_malformed_paper_blocks_are_clear_errors(block, message):
    with pytest.raises(RaygenError, match=message):
        parse(block, "sweep 'x'")


def test_the_report_reads_the_published_values_from_the_runs_metadata(tmp_path):
    from raygen.core.storage import write_parquet
    from raygen.sweep.collect import run_metadata

    run = write_run(tmp_path / "run", rows())
    write_parquet(pd.DataFrame(rows()), run / "results.parquet", run_metadata(published=BLOCK))
    write_report(run)
    md = (run / "report.md").read_text()
    assert "### Paper vs raygen: Ko, Ko and Kim 2024" in md and "### Rank agreement with the paper" in md
    assert md.count("| Table 3 |") == 4 + 1 and "not comparable" in md  # 4 values, 1 rank row
    assert paper_json(BLOCK)["values"][0]["value"] == 123.44


def test_a_model_that_failed_to_train_is_no_agreement_and_tau_is_shown_without_it():
    failed = [{**r, "health": "failed" if r["model"] == "wae" else "ok",
               "health_reason": "mode collapse: samples cover 1 of 10 classes" if r["model"] == "wae" else ""}
              for r in rows()]
    comparison, ranks = tables(failed)
    f = comparison.frame
    wae = f[(f.source == "Table 3") & f.setting.str.contains("model=wae")].iloc[0]
    assert wae["comparable?"].startswith("failed to train (mode collapse")
    tau = ranks.frame.iloc[0]
    without = kendall_tau([123.44, 51.53, 44.30], [90.5, 40.5, 20.5])  # the swapped wae left out: same order
    assert tau["τ without failed trainings"] == f"{without:+.2f} (3)" and without == 1.0
