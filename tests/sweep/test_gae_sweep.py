"""Ko et al. 2024's sweeps: their grids, and one real local-Ray run through the new paths (a model
that stops itself, fitted samplers in checkpoints, list-valued settings that differ between
variants, several epochs per Ray report, a per-trial figure for point data, missing data)."""
from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from raygen.sweep.spec import load_sweep

from sweep_helpers import only_run, results, run_sweep, write_sweep

TABLE3 = {"vae", "beta_vae", "info_vae", "wae", "vae_gan", "vade", "gmvae", "vamp_vae", "rae_l2", "gae"}


def test_table3_is_ten_models_by_four_datasets_under_the_protocol():
    configs = load_sweep("gae_table3").grid()
    assert len(configs) == 40
    assert {(c["model"], c["dataset"]) for c in configs} == {(m, d) for m in TABLE3
                                                            for d in ("mnist", "fashion_mnist", "cifar10", "svhn")}
    for c in configs:
        assert c["latent_dim"] == (10 if c["dataset"] in ("mnist", "fashion_mnist") else 32)
        assert (c["hidden"], c["epochs"], c["batch_size"], c["recon"], c["split"]) == ([500, 500, 2000], 30, 100,
                                                                                        "bce", "auto")


def test_cosine_latent_and_architecture_grids():
    cosine = load_sweep("gae_cosine").grid()
    expected = sorted((m, s) for m in ("vae_mlp", "gae") for s in range(5))
    assert sorted((c["model"], c["seed"]) for c in cosine) == expected
    assert all(c["epochs"] == 2000 and c["latent_dim"] == 1 and c["hidden"] == [256] for c in cosine)
    latent = load_sweep("vae_latent").grid()
    assert {(c["model"], c["latent_dim"]) for c in latent} == {(m, d) for m in ("vae", "rae_l2", "gae")
                                                               for d in (2, 5, 10, 16, 32, 64)}
    arch = load_sweep("architecture").grid()
    assert {(c["model"], c["arch"]) for c in arch} == {(m, a) for m in ("vae", "gae", "rae_l2", "vae_gan")
                                                       for a in ("mlp", "conv", "resnet")}
    # every model trains the same epochs: GAE too (Table 3's protocol), recording when it reached delta
    assert all(c["stop_at_delta"] is False for c in arch if c["model"] == "gae")


SWEEP = """
description: Ko et al. 2024 paths end to end
max_failures: 0
config:
  split: auto
  epochs: 1
  max_batches: 4
  limit: 1000
  eval_samples: 200
  hidden: [32, 32, 64]
variants:
  - {model: gae, dataset: {grid: [mnist, cifar10]}}
  - {model: gae, dataset: cosine, hidden: [16], latent_dim: 1, output: linear, recon: mse, sampler: gaussian,
     delta: 0.0, epochs: 6, report_every: 4, batch_size: 50}
"""


@pytest.mark.slow
def test_ko_2024_models_run_on_ray_with_missing_data_recorded(tmp_path, data_root):
    sweep = write_sweep(tmp_path, "gae_paths", SWEEP)
    run_sweep(sweep, tmp_path / "runs", data_root, "--num-cpus", "2", "--skip-missing-data", expect=1)  # no cifar10
    run_dir = only_run(tmp_path / "runs", "gae_paths")
    df = results(run_dir)
    assert len(df) == 3
    (mnist,) = df[df.dataset == "mnist"].itertuples()
    assert mnist.status == "completed" and mnist.recon_mse > 0 and mnist.sampler == "gmm"
    assert mnist.sampler_loglik > -1e9 and list(mnist.hidden) == [32, 32, 64]
    (cifar,) = df[df.dataset == "cifar10"].itertuples()
    assert cifar.status == "failed" and "cifar10" in cifar.error and "cifar-10-batches-py" in cifar.error
    (cos,) = df[df.dataset == "cosine"].itertuples()
    assert cos.status == "completed" and cos.epoch == 6 and list(cos.hidden) == [16]
    assert (run_dir / cos.cosine_png).exists()
    hist = pd.read_parquet(run_dir / "history.parquet")
    # Ray got one report per 4 epochs (4, 6); the trial's own record has every epoch
    assert sorted(hist[hist.trial_id == cos.trial_id].epoch) == [1, 2, 3, 4, 5, 6]
    # ... in its own file: Ray's experiment state keeps each trial's last result, without it
    # (one line once it ended: the whole history, rewritten over the steps' lines)
    (line,) = gzip.decompress((run_dir / cos.trial_dir / "epochs.jsonl.gz").read_bytes()).splitlines()
    assert [e["epoch"] for e in json.loads(line)] == [1, 2, 3, 4, 5, 6]
    state = "".join(p.read_text() for p in run_dir.glob("experiment_state*.json"))
    assert state and "history_json" not in state and "epochs.jsonl.gz" in state
    assert len(state) < 50_000 * len(df)  # no epoch in it, whatever the number of epochs
    # no result Ray logs carries epochs either: each step appended them to the trial's epochs file
    assert not any("epochs_json" in f.read_text() for f in run_dir.glob("*/result.json"))


@pytest.mark.slow
def test_the_cosine_smoke_report_sets_table_2_beside_raygens_figures(tmp_path, data_root):
    from raygen.report.page import write_report

    run_sweep(load_sweep("gae_cosine").path, tmp_path / "runs", data_root, "--smoke", "--num-cpus", "2")
    run_dir = only_run(tmp_path / "runs", "gae_cosine")
    write_report(run_dir)
    md = (run_dir / "report.md").read_text()
    table = md.split("### Paper vs raygen: Ko, Ko and Kim 2024")[1].split("\n\n")[1].splitlines()
    rows = [ln.split(" | ") for ln in table[2:]]
    assert len(rows) == 3  # every value of Table 2
    published = {(r[1], r[2]): r for r in rows}
    vae = published[("model=vae_mlp, dataset=cosine", "recon. MSE")]
    assert vae[3] == "0.5131 ± 0.0041" and vae[6] == "5"  # the paper's figure, raygen's over 5 seeds
    assert float(vae[4].split(" ± ")[0]) > 0
    # a smoke run trains 20 epochs, not 2000: said in every row
    assert all("20 epochs (paper: 2000)" in r[7] for r in rows)
