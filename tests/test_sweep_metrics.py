"""A real sweep (local Ray) without Inception weights: it finishes, every metric the
domain classifier gives is there, and each row says why FID is missing."""
from __future__ import annotations

import os
import subprocess
import sys

import pyarrow.parquet as pq

from conftest import REPO

SWEEP = """
description: metrics without Inception weights
config: {dataset: mnist, split: test, model: vae_mlp, epochs: 1}
"""


def test_a_sweep_without_inception_weights_finishes_and_records_why(tmp_path, data_root):
    sweep = tmp_path / "noweights.yaml"
    sweep.write_text(SWEEP)
    missing = tmp_path / "weights" / "pt_inception-2015-12-05-6726825d.pth"
    env = {**os.environ, "RAYGEN_FID_WEIGHTS": str(missing)}
    out = subprocess.run([sys.executable, "-m", "raygen.sweep", str(sweep), "--smoke", "--no-report",
                          "--data-root", str(data_root), "--storage", str(tmp_path / "runs"), "--num-cpus", "1"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs" / "noweights").iterdir()
    (row,) = pq.read_table(run_dir / "results.parquet").to_pylist()
    assert row["status"] == "completed"
    for col in ("fid", "inception_score", "fid_recon", "fid_samples", "fid_reference"):
        assert col in row and row[col] is None, col
    assert "RAYGEN_FID_WEIGHTS" in row["metric_errors"] and str(missing) in row["metric_errors"]
    for col in ("cls_fid", "cls_is", "kid", "precision", "recall", "cls_coverage", "cls_entropy", "cls_fid_recon"):
        assert isinstance(row[col], (int, float)), col
    assert row["classifier_acc"] >= 0.98 and row["cls_samples"] == 200 and row["eval_time_s"] > 0
