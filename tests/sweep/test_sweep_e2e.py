"""End to end on a real local Ray: sweep file -> Tuner -> Parquet, with a trial that
fails, one that diverges and one whose data is missing, while the rest complete."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from sweep_helpers import only_run, results, run_sweep, write_sweep

pytestmark = pytest.mark.slow  # starts Ray (or Chromium)

SWEEP = """
description: failure handling
max_failures: 0
config:
  dataset: mnist
  split: test
  model: vae_mlp
  epochs: 2
variants:
  - {seed: {grid: [0, 1]}}
  - {model: faulty_vae_mlp, fail_at_epoch: 1}  # tests/plugins/faults.py
  - {model: faulty_vae_mlp, nan_at_epoch: 1}
  - {model: faulty_vae_mlp, fail_at_setup: true}  # last: most likely on a reused worker
  - {dataset: omniglot}  # absent on the test machines (and not downloadable offline)
"""


def test_failed_diverged_and_missing_data_trials_are_recorded_and_the_rest_complete(tmp_path, data_root, faults):
    sweep = write_sweep(tmp_path, "faults", SWEEP)
    out = run_sweep(sweep, tmp_path / "runs", data_root, "--smoke", "--num-cpus", "2", "--skip-missing-data", expect=1)
    # exit 1: two trials gave no result, each said with its reason, and how to retry
    assert "error: 3 of 6 trials gave no result:" in out.stderr and "--retry-failed" in out.stderr
    assert "fail_at_epoch=1: failing on purpose" in out.stderr and "chardata.mat" in out.stderr
    assert "MemoryError: fail_at_setup" in out.stderr
    assert "benchmark: 6 trials" in out.stdout
    # the console: one line per trial, with its reason when it failed or diverged
    assert re.search(r"^\[\d/6\] failed    faulty_vae_mlp .*fail_at_epoch=1: failing on purpose", out.stdout, re.M)
    assert re.search(r"^\[\d/6\] diverged  faulty_vae_mlp .*non-finite", out.stdout, re.M)
    run_dir = only_run(tmp_path / "runs", "faults")
    df = results(run_dir)
    assert len(df) == 6 and df["trial_id"].is_unique
    # a trial failing while it is built is recorded under its own id and config, whichever worker ran it
    at_setup = df.fail_at_setup.eq(True)
    assert at_setup.sum() == 1 and df.status[at_setup].item() == "failed" and "MemoryError" in df.error[at_setup].item()
    assert not df.error[~at_setup].fillna("").str.contains("fail_at_setup").any()
    ok = df[df.status == "completed"]
    assert sorted(ok.seed) == [0, 1] and ok.recon_mse.notna().all() and (ok.epoch == 1).all()
    failed = df[df.status == "failed"]
    assert len(failed) == 3
    assert failed.error.str.contains("fail_at_epoch").sum() == 1
    assert failed.error.str.contains("omniglot.*chardata.mat", regex=True).sum() == 1
    diverged = df[df.status == "diverged"]
    assert len(diverged) == 1 and diverged.diverged_epoch.iloc[0] == 1
    hist = pd.read_parquet(run_dir / "history.parquet")
    assert set(ok.trial_id) <= set(hist.trial_id) and {"epoch", "loss", "epoch_time_s"} <= set(hist.columns)
    # plottable without a join: each epoch says its trial's model and the values that vary
    assert list(hist.columns[:7]) == ["trial_id", "model", "dataset", "fail_at_epoch", "fail_at_setup", "nan_at_epoch",
                                     "seed"]
    assert (hist.merge(df[["trial_id", "seed"]], on="trial_id").pipe(lambda h: h.seed_x == h.seed_y)).all()
    for png in ok.samples_png:
        assert (run_dir / png).exists()
    # provenance, as a tracker records it: in the Parquet metadata and raygen.json
    import json

    import pyarrow.parquet as pq

    meta = json.loads(pq.read_schema(run_dir / "results.parquet").metadata[b"raygen"])
    prov = meta["provenance"]
    assert prov["command"].startswith("python -m raygen.sweep ") and "--skip-missing-data" in prov["command"]
    assert prov["torch"] and prov["ray"] and prov["python"] and prov["git_commit"]
    assert json.loads((run_dir / "raygen.json").read_text())["provenance"]["command"] == prov["command"]
