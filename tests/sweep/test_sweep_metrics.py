"""A real sweep (local Ray) without Inception weights: it finishes, every metric the
domain classifier gives is there, and each row says why FID is missing."""
from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest

from sweep_helpers import only_run, run_sweep, write_sweep

pytestmark = pytest.mark.slow  # starts Ray (or Chromium)

SWEEP = """
description: metrics without Inception weights
config: {dataset: mnist, split: test, model: vae_mlp, epochs: 1}
"""


def test_a_sweep_without_inception_weights_finishes_and_records_why(tmp_path, data_root):
    sweep = write_sweep(tmp_path, "noweights", SWEEP)
    missing = tmp_path / "weights" / "pt_inception-2015-12-05-6726825d.pth"
    env = {**os.environ, "RAYGEN_FID_WEIGHTS": str(missing)}
    out = run_sweep(sweep, tmp_path / "runs", data_root, "--smoke", "--num-cpus", "1", env=env)
    table = pq.read_table(only_run(tmp_path / "runs", "noweights") / "results.parquet")
    (row,) = table.to_pylist()
    assert row["status"] == "completed"
    for col in ("fid", "inception_score", "fid_recon", "fid_samples", "fid_reference"):
        assert col in row and row[col] is None, col
    # every trial's error, so said once: in the run's metadata and on the console, not in the row
    (note,) = json.loads(table.schema.metadata[b"raygen"])["metric_notes"]
    assert "RAYGEN_FID_WEIGHTS" in note and str(missing) in note and row["metric_errors"] is None
    assert out.stdout.count("note: not measured in any trial: inception:") == 1
    for col in ("cls_fid", "cls_is", "kid", "precision", "recall", "cls_coverage", "cls_entropy", "cls_fid_recon"):
        assert isinstance(row[col], (int, float)), col
    assert row["classifier_acc"] >= 0.98 and row["cls_samples"] == 200 and row["eval_time_s"] > 0
