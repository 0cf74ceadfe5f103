"""A savae sweep end to end on a real local Ray: two beta values per latent size share one
phase 1 (trained by one trial, loaded by the other, even when both start at once)."""
from __future__ import annotations

import pytest

from sweep_helpers import results, run_sweep, write_sweep

pytestmark = pytest.mark.slow  # starts Ray (or Chromium)

# The latent size is the outer grid dimension, so the two trials of a latent size run side
# by side on the 2 CPUs and race for the same phase-1 cache entry.
SWEEP = """
description: savae phase-1 sharing
max_failures: 0
config:
  model: savae
  dataset: mnist
  split: test
  batch_size: 32
  channels: [4, 8, 8]
  hidden: [32, 16, 16]
  cls_width: 16
  dis_channels: [4, 8, 8]
  dis_hidden: [16, 16, 8, 8]
  n_dis: 1
  latent_dim: {grid: [2, 4]}
  beta: {grid: [0, 0.1]}
smoke: {phase1_epochs: 1, phase1_max_batches: 3}
"""


def test_savae_sweep_trains_phase1_once_per_latent_size(tmp_path, data_root):
    sweep = write_sweep(tmp_path, "savae_tiny", SWEEP)
    run_sweep(sweep, tmp_path / "runs", data_root, "--smoke", "--num-cpus", "2")
    (run_dir,) = (tmp_path / "runs" / "savae_tiny").glob("*-smoke")  # beside it: cache/ (phase 1)
    df = results(run_dir)
    assert len(df) == 4 and (df.status == "completed").all(), df[["status", "error"]]
    for latent, rows in df.groupby("latent_dim"):
        assert sorted(rows.phase1_cached) == [False, True], (latent, rows.phase1_cached.tolist())
        assert rows.phase1_key.nunique() == 1 and rows.classifier_acc_phase1.nunique() == 1
    assert len(list((tmp_path / "runs" / "savae_tiny" / "cache" / "savae_phase1").glob("*.pt"))) == 2
    assert df.recon_mse.notna().all() and df.latent_class_consistency.between(0, 1).all()
    for png in df.recon_fixed_png:
        assert (run_dir / png).exists()
    two = df[df.latent_dim == 2]
    assert all((run_dir / p).exists() for p in [*two.latent_scatter_png, *two.class_decodes_png])
    assert df[df.latent_dim == 4].latent_scatter_png.isna().all()
