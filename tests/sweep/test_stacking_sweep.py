"""A sweep file opts into stacked trials (``stack:``): its grid is grouped before Ray starts,
and a real local-Ray run gives the rows, histories, images and checkpoints the unstacked run
gives, with the same numbers."""
from __future__ import annotations

import re

import pandas as pd
import pytest
import torch

from raygen.core.errors import RaygenError
from raygen.sweep.plan import make_plan
from raygen.sweep.spec import Sweep, load_sweep

from sweep_helpers import only_run, results, run_sweep, write_sweep

COSINE = """
description: the cosine experiment, shortened
config:
  dataset: cosine
  split: auto
  eval_samples: 50
  epochs: 25
  batch_size: 50
  arch: mlp
  hidden: [256]
  act: relu
  latent_dim: 1
  output: linear
  recon: mse
  recon_reduction: mean
  lr: 1.0e-3
  seed: {grid: [0, 1, 2]}
variants:
  - {model: vae_mlp}
  - {model: gae, sampler: gaussian, delta: 0.0}
"""


def test_stacks_group_the_grid_by_everything_but_the_stack_keys():
    sweep = load_sweep("gae_cosine")
    plan = make_plan(sweep, stack="seed")
    groups, why_not = plan.stacks, plan.not_stacked
    assert sorted((g[0]["model"], len(g)) for g in groups) == [("gae", 5), ("vae_mlp", 5)]
    assert [sorted(c["seed"] for c in g) for g in groups] == [[0, 1, 2, 3, 4]] * 2 and not why_not
    gan = load_sweep("gan_vs_vae")
    plan = make_plan(gan, stack="auto")
    groups, why_not = plan.stacks, plan.not_stacked
    assert sum(len(g) for g in groups) == len(gan.grid())  # every trial once
    assert {g[0]["model"] for g in groups if len(g) > 1} == {"vae_conv", "vae_mlp"}  # seeds stacked
    assert any("gan_dcgan" in w and "optimizers" in w for w in why_not)
    assert all(len(g) == 1 for g in make_plan(sweep, stack="none").stacks)
    assert sweep.stack == ["seed"]  # the parsed sweep itself is never changed


def test_stack_auto_keeps_a_stack_only_where_a_probe_measures_it_faster(monkeypatch, data_root):
    """A real probe (stack_probe.probe: the cosine networks, one thread) and its decision, said in the stack line;
    the plan's record of trials (what a resume checks) does not depend on how the probe grouped them."""
    from raygen.engine import stack_probe, trial
    from raygen.sweep.guard import plan_record
    from raygen.sweep.plan import probe_stacks

    trial._DATA_CACHE.clear()
    plan = make_plan(load_sweep("gae_cosine"), smoke=True, stack="auto")
    assert sorted(len(g) for g in plan.stacks) == [5, 5]
    for pays, sizes, verdict in ((1.0, [5, 5], "stacked: a probe on cpu ran 5 stacked at"),
                                 (1e9, [1] * 10, "not stacked (below 1000000000.0x)")):
        monkeypatch.setattr(stack_probe, "PAYS", pays)
        probed = probe_stacks(plan, torch.device("cpu"), str(data_root), threads=1)
        assert sorted(len(g) for g in probed.stacks) == sizes
        line = probed.stack_line()
        assert line.count(verdict) == 2 and "gae" in line and "vae_mlp" in line, line
        assert plan_record(probed) == plan_record(plan)
        assert not trial._DATA_CACHE  # the driver keeps no dataset resident after probing
    assert re.search(r"ms a step against [\d.]+ ms for one alone, [\d.]+x", line)
    fixed = make_plan(load_sweep("gae_cosine"), smoke=True, stack="seed")  # named keys: stacked as asked
    assert probe_stacks(fixed, torch.device("cpu"), str(data_root)) is fixed


@pytest.mark.parametrize("stack, scheduler, message", [
    (["lr"], None, "lr cannot differ within a stack"),
    ("all", None, "give a list of keys"),
    (["seed"], {"asha": {"grace_period": 2}}, "without a scheduler"),
])
def test_a_bad_stack_is_one_line_before_anything_runs(stack, scheduler, message):
    sweep = Sweep(name="bad", config={"model": "vae_mlp", "dataset": "cosine", "seed": {"grid": [0, 1]}},
                  stack=stack, scheduler=scheduler)
    with pytest.raises(RaygenError, match=message):
        make_plan(sweep)


@pytest.mark.slow  # starts Ray twice
def test_a_stacked_sweep_gives_the_rows_of_the_unstacked_one(tmp_path, data_root):
    plain = write_sweep(tmp_path, "plain", COSINE)
    stacked = write_sweep(tmp_path, "stacked", COSINE + "stack: [seed]\n")
    run_sweep(plain, tmp_path / "runs", data_root, "--num-cpus", "2")
    out = run_sweep(stacked, tmp_path / "runs", data_root, "--num-cpus", "2")
    assert "stack: 6 trials as 2 Ray trials (stacks of 3)" in out.stdout
    a = results(only_run(tmp_path / "runs", "plain")).sort_values(["model", "seed"]).reset_index(drop=True)
    run_dir = only_run(tmp_path / "runs", "stacked")
    b = results(run_dir).sort_values(["model", "seed"]).reset_index(drop=True)
    assert len(b) == 6 and (b.status == "completed").all() and b.trial_id.is_unique
    assert (b.stacked == 3).all() and b.stack_id.nunique() == 2 and a.get("stacked", pd.Series()).isna().all()
    for col in ("recon_mse", "loss", "epoch"):
        assert b[col].tolist() == pytest.approx(a[col].tolist(), rel=1e-3, abs=1e-5), col
    # the bookkeeping: every row has its start-up and its share of the checkpoints written
    assert b.startup_s.notna().all() and (b.checkpoints >= 1).all() and (a.checkpoints >= 1).all()
    # a worker's first trial counts from its process's start: importing torch alone takes longer
    assert b.first_on_worker.any() and (b.startup_s[b.first_on_worker.astype(bool)] > 0.3).all()
    assert b.checkpoint_mb.sum() == pytest.approx(a.checkpoint_mb.sum(), rel=0.2)
    assert "bookkeeping: trial start-up" in out.stdout
    for png in b.cosine_png:  # each member's own figure, in its own folder
        assert (run_dir / png).is_file() and "/member_" in png
    hist = pd.read_parquet(run_dir / "history.parquet")
    assert (hist.groupby("trial_id").epoch.apply(sorted).apply(list) == [list(range(1, 26))] * 6).all()
    # the last checkpoint: each member's model as if it had run alone
    for stack_dir in {p.rsplit("/member_", 1)[0] for p in b.cosine_png}:
        (ckpt,) = (run_dir / stack_dir).glob("checkpoint_*")
        saved = [torch.load(ckpt / f"member_{i}.pt", weights_only=True) for i in range(3)]
        assert sorted(s["config"]["seed"] for s in saved) == [0, 1, 2]
        assert all(s["state"]["epoch"] == 25 and "opts" not in s["state"] for s in saved)
