"""The report's table builders on hand-made results: empty, partial, failed, several seeds."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from raygen.core.errors import RaygenError
from raygen.report import tables
from raygen.report.analysis import fmt_ms, summarize
from raygen.report.papers.chaturvedula import gan_vs_vae_table
from raygen.report.papers.ko2024 import model_dataset_tables
from raygen.report.verdict import verdict
from raygen.sweep.collect import shared_metric_errors

from report_fixtures import analyze, base_row


def gan_vs_vae_rows() -> list[dict]:
    """Chaturvedula's comparison with three seeds: two GANs (FID, IS, no reconstruction), a VAE
    at latent 2 and 10 (reconstruction too); one VAE trial failed."""
    rows, i = [], 0
    fids = [(18.0, 40.0, 30.0, 28.0), (19.0, 42.0, 31.0, 29.0), (20.0, 44.0, 32.0, 30.0)]  # per seed
    for s, (fg, fm, fv2, fv10) in enumerate(fids):
        for model, fid, latent, extra in [("gan_dcgan", fg, 100, {"inception_score": 2.7}),
                                          ("gan_mlp", fm, 100, {"inception_score": 2.1}),
                                          ("vae_conv", fv2, 2, {"recon_mse": 0.05 + 0.01 * s}),
                                          ("vae_conv", fv10, 10, {"recon_mse": 0.03 + 0.01 * s})]:
            arch = {"gan_dcgan": None, "gan_mlp": None}.get(model, "conv")
            rows.append(base_row(i, model=model, seed=s, latent_dim=latent, fid=fid, arch=arch,
                                 num_params=5_158_018 if model == "gan_dcgan" else 3_540_000, **extra))
            i += 1
    rows.append(base_row(i, model="vae_conv", seed=3, latent_dim=10, status="failed",
                         error="RuntimeError: fail_at_epoch=1: failing on purpose", arch="conv"))
    return rows


@pytest.fixture
def lay():
    return analyze(pd.DataFrame(gan_vs_vae_rows()), pd.DataFrame(columns=["trial_id", "epoch", "loss"]))


def test_swept_parameters_are_those_varied_within_a_model(lay):
    # latent_dim varies within vae_conv; arch differs between models only (a model default): not swept
    assert lay.swept == ["latent_dim"]
    assert lay.keys == ["model", "dataset", "latent_dim"]
    assert lay.primary == "fid" and lay.metrics == ["fid", "inception_score", "recon_mse"]


def test_mean_and_std_over_seeds_and_failed_trials_do_not_count(lay):
    summ = summarize(lay)
    v10 = summ[(summ.model == "vae_conv") & (summ.latent_dim == 10)].iloc[0]
    assert v10["n"] == 4 and v10["n_ok"] == 3  # the failed fourth seed is counted, not averaged
    assert v10["fid"] == pytest.approx(29.0) and v10["fid_std"] == pytest.approx(1.0)
    assert v10["recon_mse"] == pytest.approx(0.04) and v10["recon_mse_std"] == pytest.approx(0.01)
    assert fmt_ms(v10["fid"], v10["fid_std"], 3) == "29.00 ± 1.00"
    assert fmt_ms(29.0, float("nan"), 1) == "29.00" and fmt_ms(float("nan"), 1.0, 3) == "—"


def test_gan_vs_vae_table_has_seed_001_columns_and_the_best_model_highlighted(lay):
    t = gan_vs_vae_table(lay, summarize(lay))
    assert t.title == "GAN vs VAE (Chaturvedula form)"
    assert list(t.frame.columns) == ["model", "best configuration", "FID ↓", "IS ↑", "recon. MSE ↓", "parameters",
                                     "training time (s)", "seeds"]
    f = t.frame.set_index("model")
    assert f.loc["vae_conv", "best configuration"] == "latent size=10"  # FID 29 beats 31 at latent 2
    assert f.loc["vae_conv", "seeds"] == "3/4"
    assert f.loc["gan_dcgan", "FID ↓"] == "19.00 ± 1.00" and f.loc["gan_dcgan", "parameters"] == "5.16 M"
    best = t.frame.iloc[min(t.best_rows)]["model"]
    assert t.best_rows and best == "gan_dcgan"
    assert (list(t.frame["model"]).index("gan_dcgan"), "FID ↓") in t.best_cells
    assert (list(t.frame["model"]).index("vae_conv"), "recon. MSE ↓") in t.best_cells


def test_without_inception_the_gan_vs_vae_table_shows_the_classifier_metrics_best_goes_by():
    rows = []
    for r in gan_vs_vae_rows():
        r = dict(r)
        if r.get("fid") is not None:
            r["cls_fid"] = r.pop("fid") * 10
        r.pop("inception_score", None)
        rows.append(r)
    lay = analyze(pd.DataFrame(rows), pd.DataFrame(columns=["trial_id", "epoch", "loss"]))
    assert lay.primary == "cls_fid"
    t = gan_vs_vae_table(lay, summarize(lay))
    assert t.title == "GAN vs VAE (Chaturvedula form)"
    assert "FID (domain classifier) ↓" in t.frame.columns and "recon. MSE ↓" in t.frame.columns
    assert t.frame.set_index("model").loc["gan_dcgan", "FID (domain classifier) ↓"] == "190.0 ± 10.0"
    assert "Not measured in this run: FID, IS" in t.caption


def test_summary_highlights_each_models_best_configuration(lay):
    summ = summarize(lay)
    t = tables.summary_table(lay, summ)
    best = t.frame.iloc[sorted(t.best_rows)]
    assert sorted(zip(best["model"], best["latent size"])) == [("gan_dcgan", "100"), ("gan_mlp", "100"),
                                                               ("vae_conv", "10")]
    assert len(t.frame) == 4


def test_which_parameter_table_names_the_best_value_per_model(lay):
    (t,) = tables.best_param_tables(lay, summarize(lay)) or [None]
    # latent_dim has 3 values overall (2, 10, 100) but only vae_conv varies it
    assert t is not None and t.title.startswith("Best latent size by ")
    assert t.frame.to_dict("records") == [{"model": "vae_conv", "best latent size": "10", "FID ↓": "29.00 ± 1.00",
                                           "latent size tried": "2, 10"}]


def test_the_verdict_names_the_winner_the_runner_up_and_whether_the_margin_is_real(lay):
    said = verdict(lay, summarize(lay))
    best, runner_up = said.lines
    assert best.startswith("Best by FID ↓: gan_dcgan") and "19.00 ± 1.00 over 3 seeds" in best
    # the runner-up is the best of another model; difference 10, t(2) = 4.303: 10 ± 4.303 * sqrt(2/3)
    assert runner_up.startswith("Runner-up: vae_conv (latent size=10), 29.00 ± 1.00; margin 10.00 (")
    assert "95% interval of the difference [6.487, 13.51]" in runner_up and "not separable" not in runner_up
    assert not said.bad and not said.banner


def test_a_margin_within_the_seeds_noise_is_not_separable():
    rows = [base_row(i, model=m, seed=s, fid=f) for i, (m, s, f) in enumerate(
        [("vae", 0, 30.0), ("vae", 1, 34.0), ("wae", 0, 31.0), ("wae", 1, 35.0)])]
    (_, runner_up) = verdict(analyze(pd.DataFrame(rows)), summarize(analyze(pd.DataFrame(rows)))).lines
    assert "margin 1" in runner_up and runner_up.endswith("not separable with the seeds run).")
    one = [base_row(0, model="vae", fid=30.0), base_row(1, model="wae", fid=31.0)]
    lay = analyze(pd.DataFrame(one))
    assert "cannot be told" in verdict(lay, summarize(lay)).lines[1]


def test_a_smoke_run_says_so_and_is_no_comparison(lay):
    lay.results["run"] = "20261121-101500-smoke"
    lay.results["max_batches"], lay.results["eval_samples"], lay.results["epoch"] = 2, 200, 1
    said = verdict(lay, summarize(lay))
    assert said.banner.startswith("Smoke run (--smoke): 1 epoch(s) of at most 2 batches per trial, 200 evaluation")
    assert said.lines[0].startswith("Smoke run: not a comparison. Best by")


def test_a_metric_error_every_trial_shares_is_said_once():
    rows = gan_vs_vae_rows()
    for i, r in enumerate(rows):
        r["eval_time_s"] = None if r["status"] == "failed" else 1.0
        r["metric_errors"] = None if r["status"] == "failed" else "inception: WeightsMissing: not found" + (
            "\nclassifier: boom" if i == 5 else "")
    out, notes = shared_metric_errors(pd.DataFrame(rows))
    assert notes == ["inception: WeightsMissing: not found"]
    assert list(out["metric_errors"].dropna()) == ["classifier: boom"]
    t = tables.problems_table(analyze(out))
    assert t.title == "Failed and diverged trials (1) and metric errors (1 trial)"
    assert any("not measured: inception" in v for k, v in tables.header_facts(analyze(out), "r", "s", notes))


def test_failed_and_diverged_trials_are_listed_with_their_errors():
    rows = gan_vs_vae_rows() + [base_row(99, model="vae_conv", latent_dim=2, seed=7, status="diverged",
                                         error=None, diverged_epoch=3)]
    rows[0]["metric_errors"] = "fid: RaygenError: Inception weights missing"
    lay = analyze(pd.DataFrame(rows))
    t = tables.problems_table(lay)
    recs = {r["status"]: r for r in t.frame.to_dict("records")}
    assert len(t.frame) == 3 and set(recs) == {"completed", "failed", "diverged"}  # in configuration order
    assert "Inception weights missing" in recs["completed"]["error"]
    assert "fail_at_epoch=1" in recs["failed"]["error"] and "seed=3" in recs["failed"]["configuration"]
    assert recs["diverged"]["error"] == "diverged (epoch 3)"
    assert sorted(t.row_class) == ["diverged", "failed", "warn"]
    assert t.title == "Failed and diverged trials (2) and metric errors (1 trial)"
    trials = tables.trials_table(lay)
    assert trials.row_class.count("failed") == 1 and trials.row_class.count("diverged") == 1


def test_one_metric_error_shared_by_many_trials_is_one_row_naming_them():
    rows = gan_vs_vae_rows()
    for r in rows[:5]:
        r["metric_errors"] = "inception: WeightsMissing: not found"
    rows[5]["metric_errors"] = "classifier: boom"
    t = tables.problems_table(analyze(pd.DataFrame(rows)))
    assert t.title == "Failed and diverged trials (1) and metric errors (6 trials)"
    assert len(t.frame) == 3 and list(t.frame["status"]) == ["failed", "completed", "completed"]
    many = t.frame[t.frame["error"].str.contains("WeightsMissing")].iloc[0]
    assert many["trial_id"].endswith(" + 4 more") and many["configuration"].startswith("5 trials: ")
    assert many["model"] == "gan_dcgan, gan_mlp, vae_conv"
    assert t.frame[t.frame["error"].str.contains("boom")].iloc[0]["trial_id"] == "t005"


def test_all_failed_run_gives_tables_without_numbers_and_never_raises():
    rows = [base_row(i, status="failed", error=f"boom {i}", seed=i) for i in range(3)]
    lay = analyze(pd.DataFrame(rows))
    summ = summarize(lay)
    assert lay.primary is None and list(summ["n_ok"]) == [0]
    assert len(tables.best_per_model_table(lay, summ).frame) == 0
    assert tables.summary_table(lay, summ).row_class == ["failed"]
    assert len(tables.problems_table(lay).frame) == 3
    said = verdict(lay, summ)
    assert said.bad and said.lines[0].startswith("Every trial failed or diverged (3 of 3)")
    assert ("trials", "3: 3 failed") in tables.header_facts(lay, "run", "test")
    same = analyze(pd.DataFrame([base_row(i, status="failed", error="OOM", seed=i) for i in range(3)]))
    assert verdict(same, summarize(same)).lines[1:] == ["3 trials: OOM"]  # identical errors collapsed


def test_empty_and_column_poor_results_do_not_crash():
    interrupted = [base_row(i, model=m, status="stopped", train_time_s=None, wall_time_s=None)
                   for i, m in enumerate(["gan_dcgan", "gan_dcgan", "vae_conv"])]  # a sweep stopped before epoch 1
    for df in (pd.DataFrame(), pd.DataFrame(columns=["trial_id", "status"]), pd.DataFrame(interrupted),
               pd.DataFrame([{"trial_id": "a"}, {"trial_id": "b", "status": "running"}])):
        lay = analyze(df)
        summ = summarize(lay)
        assert tables.best_param_tables(lay, summ) == [] and model_dataset_tables(lay, summ) == []
        assert len(tables.trials_table(lay).frame) == len(df)
        tables.problems_table(lay), tables.header_facts(lay, "r", "s"), verdict(lay, summ)
        tables.summary_table(lay, summ)
        assert tables.best_per_model_table(lay, summ).title == "Best configuration per model"
    assert verdict(analyze(pd.DataFrame()), summarize(analyze(pd.DataFrame()))).lines == ["No trial has reported yet."]


def test_model_by_dataset_tables_in_seed_004_form():
    rows, i = [], 0
    for ds, fids in {"mnist": (123.4, 51.5, 44.3), "fashion_mnist": (490.6, 283.4, 196.3)}.items():
        for model, fid in zip(("vae", "beta_vae", "gae"), fids):
            for s in (0, 1):
                rows.append(base_row(i, model=model, dataset=ds, seed=s, fid=fid + s, train_time_s=100.0 + i))
                i += 1
    lay = analyze(pd.DataFrame(rows))
    fid_t, time_t = model_dataset_tables(lay, summarize(lay))
    assert "Table 3" in fid_t.title and "Table 4" in time_t.title
    f = fid_t.frame.set_index("dataset")
    assert f.loc["mnist", "gae"] == "44.80 ± 0.71" and f.loc["fashion_mnist", "vae"] == "491.1 ± 0.7"
    cols = list(fid_t.frame.columns)
    assert {(r, c) for r, c in fid_t.best_cells} == {(0, "gae"), (1, "gae")} and "gae" in cols
    assert len(time_t.best_cells) == 2


def test_unknown_metric_is_a_clear_error():
    with pytest.raises(RaygenError, match="--metric 'fdi'.*choose one of: fid"):
        analyze(pd.DataFrame(gan_vs_vae_rows()), metric="fdi")
    lay = analyze(pd.DataFrame(gan_vs_vae_rows()), metric="recon_mse")
    assert lay.primary == "recon_mse"
    assert not math.isnan(summarize(lay)["recon_mse"].min())


def test_plots_leave_a_model_off_an_axis_it_does_not_vary_and_pareto_points_are_configurations(lay):
    from raygen.report import plots

    assert plots.lacks(lay, "gan_dcgan", "latent_dim") and not plots.lacks(lay, "vae_conv", "latent_dim")
    lay.results["train_time_s"] = [10.0 + i for i in range(len(lay.results))]
    summ = summarize(lay)
    assert summ["train_time_s"].notna().all() and len(summ) == 4  # 12 seeds' trials -> 4 configurations
    png = plots.pareto(lay, summ)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert plots.pareto(lay, summ.drop(columns=["train_time_s"])) is None


def test_the_header_says_which_trials_were_stacked():
    rows = [base_row(i, seed=i, stacked=3 if i < 3 else 1, stack_id="s0" if i < 3 else None) for i in range(4)]
    facts = dict(tables.header_facts(analyze(pd.DataFrame(rows)), "r", "s"))
    assert facts["stacked"].startswith("3 of 4 trials trained in 1 stacks")
    assert "stacked" not in dict(tables.header_facts(analyze(pd.DataFrame([base_row(0)])), "r", "s"))


def test_the_papers_sections_apply_from_the_data(lay):
    from raygen.report.papers import Subject, applicable

    names = [type(sec).__name__ for sec in applicable(Subject(lay, summarize(lay)))]
    assert names == ["GanVsVae"]  # one dataset: no model × dataset tables; β not swept
    two = pd.concat([lay.results, lay.results.assign(dataset="fashion_mnist")], ignore_index=True)
    assert [type(sec).__name__ for sec in applicable(Subject(analyze(two), None))] == ["GanVsVae", "ModelByDataset"]


def test_ties_are_not_bolded_and_a_target_ranks_by_distance_to_it():
    from raygen.record.columns import HIGHER, Column
    from raygen.report.analysis import Analysis
    from raygen.report.tables import Table, _bold_best

    raw = pd.DataFrame({"precision": [0.0, 0.0, 0.0], "recon_sharpness": [4.36, 0.9, 0.6]})
    lay = Analysis(results=raw, history=pd.DataFrame(), columns={
        "precision": Column("precision", "precision", HIGHER),
        "recon_sharpness": Column("recon_sharpness", "sharpness", HIGHER, target=1.0)})
    t = Table("t", "t", raw)
    _bold_best(lay, t, raw, {"p": "precision", "s": "recon_sharpness"})
    assert t.best_cells == {(1, "s")}  # 0.9 is nearest the data's 1; noise-level 4.36 is not best; zeros tie


@pytest.mark.parametrize("df, expected", [(1, 12.706), (9, 2.262), (10, 2.228), (20, 2.086), (29, 2.045)])
def test_t_quantiles_for_any_number_of_seeds(df, expected):
    from raygen.report.papers.comparison import t95

    assert t95(df) == pytest.approx(expected, abs=1e-3)


def test_times_are_compared_as_cpu_seconds_when_trials_shared_the_machine():
    from raygen.report.analysis import Analysis

    alone = pd.DataFrame({"train_time_s": [10.0, 20.0], "train_cpu_s": [9.0, 19.0], "trials_beside_max": [0, 0]})
    shared = alone.assign(trials_beside_max=[1, 1], train_time_s=[30.0, 25.0])
    assert Analysis(results=alone, history=pd.DataFrame()).time_col == "train_time_s"
    lay = Analysis(results=shared, history=pd.DataFrame())
    assert lay.time_col == "train_cpu_s" and "CPU-seconds" in lay.time_words()


def test_unhealthy_trials_are_marked_where_they_appear():
    rows = [base_row(0, model="vae_gan", seed=0, cls_fid=700.0, health="failed",
                     health_reason="discriminator saturated (loss < 0.001) in 90% of epochs"),
            base_row(1, model="vae", seed=0, cls_fid=200.0, health="ok", health_reason=""),
            base_row(2, model="beta_vae", seed=0, cls_fid=280.0, health="warning",
                     health_reason="3 of 10 latent units active")]
    lay = analyze(pd.DataFrame(rows))
    summ = summarize(lay)
    best = tables.best_per_model_table(lay, summ).frame.set_index("model")
    assert best.loc["vae_gan", "training health"].startswith("failed in 1 of 1: discriminator saturated")
    assert best.loc["vae", "training health"] == "ok"
    assert best.loc["beta_vae", "training health"] == "warning in 1 of 1: 3 of 10 latent units active"
    trials = tables.trials_table(lay)
    i = list(trials.frame["trial_id"]).index(rows[0]["trial_id"])
    assert trials.row_class[i] == "failed" and "health" in trials.frame


def test_the_header_says_the_command_code_and_versions_that_made_the_run():
    prov = {"command": "python -m raygen.sweep gae_cosine --smoke", "raygen": "0.1.0", "git_commit": "a" * 40,
            "git_dirty": True, "python": "3.11.7", "torch": "2.15.0", "ray": "2.60.0", "cuda": None,
            "driver_host": "vm", "driver_devices": ["cpu"]}
    facts = dict(tables.header_facts(analyze(pd.DataFrame([base_row(0)])), "r", "s", provenance=prov))
    assert facts["command"] == prov["command"]
    assert facts["code"] == "raygen 0.1.0, git aaaaaaaaaaaa with uncommitted changes"
    assert facts["versions"] == "python 3.11.7, torch 2.15.0, ray 2.60.0" and facts["driver"] == "vm (cpu)"
    assert "command" not in dict(tables.header_facts(analyze(pd.DataFrame([base_row(0)])), "r", "s"))  # older runs


def test_the_header_says_the_precision_and_warns_when_rows_mix_them():
    rows = [base_row(i, train_precision="fp32") for i in range(2)]
    one = dict(tables.header_facts(analyze(pd.DataFrame(rows)), "r", "s"))
    assert one["training precision"] == "fp32"
    mixed = [base_row(0, train_precision="fp32"), base_row(1, train_precision="bf16")]
    assert dict(tables.header_facts(analyze(pd.DataFrame(mixed)), "r", "s"))["training precision"].startswith(
        "bf16, fp32 (mixed: times and scores of different precisions are not comparable)")
