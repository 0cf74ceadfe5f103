"""Scale-out on real Ray: a two-node cluster (ray.cluster_utils.Cluster) runs a sweep
across both nodes; Optuna (with ASHA) searches a small space; cluster.yaml is valid
by Ray's own schema."""
from __future__ import annotations

import copy
import json

import pytest
import yaml

from conftest import REPO
from sweep_helpers import only_run, results, run_sweep, write_sweep

SMALL = """
description: {desc}
config:
  model: vae_mlp
  dataset: mnist
  split: test
  epochs: 2
  max_batches: 5
  eval_samples: 100
"""


@pytest.mark.slow
def test_two_node_cluster_places_trials_on_both_nodes(tmp_path, data_root):
    from ray.cluster_utils import Cluster

    from raygen.sweep.cli import main

    # trials of some seconds each, so that the second node's worker starts before the first has run them all
    text = SMALL.format(desc="two nodes").replace("max_batches: 5", "max_batches: 60")
    text += "  seed: {grid: [0, 1, 2, 3]}\n"
    sweep = write_sweep(tmp_path, "two_nodes", text)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        rc = main([str(sweep), "--address", cluster.address, "--storage", str(tmp_path / "runs"),
                   "--data-root", str(data_root), "--no-report"])
        assert rc == 0
    finally:
        cluster.shutdown()
    run_dir = only_run(tmp_path / "runs", "two_nodes")
    df = results(run_dir)
    assert len(df) == 4 and (df.status == "completed").all()
    assert df.node_id.nunique() == 2, df[["trial_id", "node_id"]]
    for row in df.itertuples():  # every trial's state and images reached the shared storage
        assert (run_dir / row.samples_png).exists() and (run_dir / row.trial_dir / "result.json").exists()


@pytest.mark.slow
def test_optuna_search_with_asha_records_the_best_config(tmp_path, data_root):
    text = SMALL.format(desc="optuna") + """  lr: {loguniform: [1.0e-4, 1.0e-2]}
  latent_dim: {choice: [2, 8]}
search: optuna
num_samples: 4
metric: recon_mse
mode: min
scheduler: {asha: {metric: loss, mode: min, grace_period: 1, max_t: 2}}
"""
    sweep = write_sweep(tmp_path, "optuna_small", text)
    out = run_sweep(sweep, tmp_path / "runs", data_root, "--num-cpus", "2")
    run_dir = only_run(tmp_path / "runs", "optuna_small")
    df = results(run_dir)
    assert len(df) == 4 and df.trial_id.is_unique
    assert df.lr.between(1e-4, 1e-2).all() and set(df.latent_dim) <= {2, 8} and df.lr.nunique() == 4
    done = df[df.status == "completed"]
    assert len(done) >= 1 and set(df.status) <= {"completed", "stopped"}
    best = json.loads((run_dir / "best.json").read_text())
    assert best["recon_mse"] == pytest.approx(done.recon_mse.min())
    assert best["trial_id"] == done.loc[done.recon_mse.idxmin(), "trial_id"] and "lr" in best
    assert "best (min recon_mse)" in out.stdout


def _validate(cfg: dict) -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(cfg)))


def test_cluster_yaml_passes_rays_validation_and_a_typo_fails():
    import jsonschema

    cfg = yaml.safe_load((REPO / "cluster.yaml").read_text())
    _validate(cfg)
    assert cfg["available_node_types"]["gpu_worker"]["min_workers"] == 0
    head_start = " ".join(cfg["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start
    # a pre-made security group on every node: the autoscaler then opens nothing itself
    assert "security_group" not in cfg["provider"]
    assert all(t["node_config"]["SecurityGroupIds"] for t in cfg["available_node_types"].values())
    # every Ray process demands the cluster's token
    for commands in (cfg["head_start_ray_commands"], cfg["worker_start_ray_commands"]):
        assert all("RAY_AUTH_MODE=token" in c for c in commands if "ray start" in c)
    assert "~/.ray/auth_token" in cfg["file_mounts"]
    assert any("uv sync --frozen" in c for c in cfg["setup_commands"])
    assert any("uv==" in c for c in cfg["setup_commands"])  # the installer pinned too
    bad = copy.deepcopy(cfg)
    bad["available_node_types"]["gpu_worker"]["min_worker"] = bad["available_node_types"]["gpu_worker"].pop(
        "min_workers")
    with pytest.raises(jsonschema.ValidationError, match="min_worker"):
        _validate(bad)
    bad = copy.deepcopy(cfg)
    bad["head_node_typ"] = bad.pop("head_node_type")
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        _validate(bad)
