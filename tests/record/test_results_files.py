"""Results files load cleanly everywhere: typed columns that stack across runs (also a run
whose metric failed and one where every trial failed), strict JSON in best.json, and the
README's pandas snippet on any run."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from raygen.sweep.collect import best_trial, typed, write_results

from conftest import REPO


def rows(run: str, failed: bool = False, fid: bool = True) -> pd.DataFrame:
    out = []
    for i, (model, latent) in enumerate([("vae_conv", 2), ("vae_conv", 10), ("gan_dcgan", 100)]):
        row = {"sweep": "gan_vs_vae", "run": run, "trial_id": f"{run}_{i}", "model": model, "latent_dim": latent,
               "seed": np.int64(i), "epochs": 2}
        if failed:
            row.update(status="failed", error="RuntimeError: boom")
        else:
            row.update(status="completed", error=None, epoch=2, batches=np.int64(70), recon_mse=0.01 * (i + 1),
                       cls_fid=40.0 + i, train_time_s=3.5, eval_time_s=1.0, wall_time_s=5.0,
                       fid=12.0 + i if fid else None, metric_errors=None if fid else "inception: weights missing",
                       fid_extractor="inception" if fid else None, fid_reference="mnist/test" if fid else None)
        out.append(row)
    df = pd.DataFrame(out)
    df.attrs["config_columns"] = ["epochs", "latent_dim", "model", "seed"]
    return typed(df)


def test_runs_with_and_without_a_metric_and_all_failed_stack_with_one_schema(tmp_path):
    dirs = []
    for name, kw in [("a", {}), ("b", {"fid": False}), ("c", {"failed": True})]:
        d = tmp_path / name
        d.mkdir()
        write_results(rows(name, **kw), pd.DataFrame({"trial_id": [f"{name}_0"], "epoch": [1], "loss": [1.0]}), str(d))
        dirs.append(d)
    frames = [pd.read_parquet(d / "results.parquet") for d in dirs]
    for f in frames:
        assert f["fid"].dtype == "float64" and f["cls_fid"].dtype == "float64" and f["train_time_s"].dtype == "float64"
        assert str(f["error"].dtype) == "string"
    assert str(frames[0]["epoch"].dtype) == "Int64" and str(frames[0]["batches"].dtype) == "Int64"
    both = pd.concat(frames, ignore_index=True)
    assert both["fid"].dtype == "float64" and both["fid"].notna().sum() == 3 and len(both) == 9
    schemas = [pq.read_schema(d / "results.parquet") for d in dirs]
    assert all(str(s.field("fid").type) == "double" for s in schemas)  # never Arrow's null type
    nulls = [(d.name, f.name) for d, s in zip(dirs, schemas) for f in s if str(f.type) == "null"]
    assert nulls == []  # the text that nothing filled in (b: its shared metric error said once) too
    assert str(schemas[1].field("fid_extractor").type) == str(schemas[1].field("metric_errors").type) == "large_string"


def test_best_json_is_strict_json_with_native_types(tmp_path):
    df = rows("a")
    best = best_trial(df, "cls_fid", "min")
    text = json.dumps(best, allow_nan=False)
    def refuse(token):
        raise AssertionError(f"non-standard JSON constant {token}")
    parsed = json.loads(text, parse_constant=refuse)
    assert parsed["seed"] == 0 and isinstance(parsed["seed"], int) and parsed["cls_fid"] == 40.0
    assert "np." not in repr(best)


def test_readme_pandas_snippet_runs_on_a_run_where_every_trial_failed(tmp_path):
    readme = (REPO / "README.md").read_text()
    (snippet,) = [b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "read_parquet" in b]
    run = tmp_path / "results" / "gan_vs_vae" / "20260101-000000"
    run.mkdir(parents=True)
    write_results(rows("r", failed=True), pd.DataFrame(columns=["trial_id", "epoch"]), str(run))
    out = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "recon_mse" in out.stdout and "train_time_s" in out.stdout


def test_the_benchmark_line_accounts_for_every_phase_and_rays_start():
    from raygen.sweep.collect import benchmark_line

    df = pd.DataFrame({"train_time_s": [10.0, 10.0], "sampler_fit_s": [1.0, None], "eval_time_s": [2.0, 2.0],
                       "images_s": [0.5, 0.5]})
    line = benchmark_line(df, wall_s=20.0, slots=2, ray_start_s=6.8)
    assert line == ("benchmark: 2 trials, wall 20.0 s on 2 slot(s); training 20.0 s, sampler fit 1.0 s, "
                    "evaluation 4.0 s, images 1.0 s (trial-seconds); overhead 7.0 s (35% of wall); Ray's start "
                    "6.8 s before it\n"
                    "bookkeeping: nothing recorded")


def test_the_bookkeeping_line_has_start_up_and_checkpoints_per_trial_and_stack():
    from raygen.sweep.collect import add_checkpoint_tally, bookkeeping_line

    df = pd.DataFrame({"trial_id": ["a", "b", "s-0", "s-1"], "stack_id": [None, None, "s", "s"],
                       "stacked": [None, None, 2, 2], "startup_s": [9.5, 0.02, 10.1, 10.1],
                       "first_on_worker": [True, False, True, True]})
    df = add_checkpoint_tally(df, {"a": [3, 3 * 2**20], "b": [1, 2**20], "s": [2, 4 * 2**20]})
    assert df.checkpoints.tolist() == [3, 1, 2, 2] and df.checkpoint_mb.tolist() == [3.0, 1.0, 2.0, 2.0]
    assert bookkeeping_line(df) == ("bookkeeping: trial start-up: at most 0.02 s on a reused worker, 10.1 s for a "
                                    "worker's first trial (its process's start and imports included); "
                                    "checkpoints: 6 written, 8.0 MB (2.0 MB per trial)")
    # only what happened: no reused worker here, and rows that never said which came first
    assert bookkeeping_line(df.iloc[[0, 2, 3]]).startswith("bookkeeping: trial start-up: 10.1 s for a worker's first")
    assert bookkeeping_line(df.drop(columns=["first_on_worker", "checkpoints"])) == (
        "bookkeeping: trial start-up: at most 10.10 s")


def test_unstarted_rows_are_only_the_configurations_that_have_no_trial():
    """After Ctrl-C a row per configuration Ray never started, none for those it did, even when
    a whole-number setting only some models have reads back as a float (5.0) from its column."""
    from raygen.sweep.collect import add_unstarted

    configs = [{"model": "vade", "components": 5}, {"model": "vade", "components": 10}, {"model": "vae", "lr": 3e-4},
               {"model": "vae", "lr": 1e-3}]
    results = pd.DataFrame({"trial_id": ["a", "b"], "model": ["vade", "vae"], "status": ["interrupted"] * 2,
                            "components": [5.0, np.nan], "lr": [np.nan, 1e-3]})
    out = add_unstarted(results, configs, "s", "r", "interrupted")
    extra = out.iloc[2:]
    assert len(out) == 4 and list(extra.trial_id) == ["unstarted_00001", "unstarted_00002"]
    assert list(extra.model) == ["vade", "vae"] and extra.components.iloc[0] == 10
