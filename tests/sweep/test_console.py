"""The sweep's console: a table naming trials by model and swept values with the sweep's
metric, one line per finished trial, and little else."""
from __future__ import annotations

import io
import re
from types import SimpleNamespace

import pytest

from raygen.sweep.callbacks.console import Console, best_words, fmt, swept_keys
from raygen.sweep.spec import load_sweep

from conftest import REPO
from sweep_helpers import run_sweep


def fake(status, config, result=None, trial_id="t"):
    return SimpleNamespace(status=status, config=config, last_result=result or {}, trial_id=trial_id,
                           get_error=lambda: RuntimeError("worker died: out of memory"))


def test_trials_are_named_by_model_and_swept_values():
    configs = load_sweep("gan_vs_vae_quick").grid(smoke=True)
    keys = swept_keys(configs)
    assert keys[0] == "model" and {"seed", "latent_dim"} <= set(keys) and "epochs" not in keys


def test_the_table_has_the_model_the_swept_values_and_the_metric():
    con = Console(["model", "latent_dim", "seed"], "cls_fid", total=3, stream=io.StringIO(), live=True)
    trials = [fake("RUNNING", {"model": "vae_conv", "latent_dim": 10, "seed": 1, "epochs": 20}, {"epoch": 3}),
              fake("PENDING", {"model": "gan_dcgan", "seed": 0}),
              fake("TERMINATED", {"model": "vae_mlp", "latent_dim": 2, "seed": 0}, {"cls_fid": 45.2123})]
    lines = con.table(trials)
    assert lines[0].startswith("progress: 0/3 finished")
    assert lines[1].split() == ["status", "trial", "epoch", "cls_fid"]
    assert re.search(r"running\s+vae_conv  latent_dim=10  seed=1\s+3\s+—", lines[2])
    assert "gan_dcgan  seed=0" in lines[3] and len(lines) == 4  # finished trials get a line of their own


def test_one_line_per_finished_failed_or_diverged_trial():
    out = io.StringIO()
    con = Console(["model", "seed"], "recon_mse", total=3, stream=out, live=False)
    con.on_trial_complete(0, [], fake("TERMINATED", {"model": "vae", "seed": 0}, {
        "recon_mse": 0.01234567, "epoch": 30, "time_total_s": 95.16, "status": "completed"}))
    con.on_trial_complete(0, [], fake("TERMINATED", {"model": "vae", "seed": 1},
                                      {"status": "diverged", "error": "non-finite loss at epoch 2", "epoch": 2}))
    con.on_trial_error(0, [], fake("ERROR", {"model": "vae", "seed": 2}))
    lines = out.getvalue().splitlines()
    assert lines == ["[1/3] completed vae  seed=0  recon_mse 0.01235, epoch 30, 95.2 s",
                     "[2/3] diverged  vae  seed=1  epoch 2: non-finite loss at epoch 2",
                     "[3/3] failed    vae  seed=2: worker died: out of memory"]


def test_a_stacked_trial_is_named_by_its_members_and_their_range():
    import json

    from raygen.record.transport import to_tune

    out = io.StringIO()
    members = [to_tune({"model": "vae_mlp", "seed": s, "hidden": [256]}) for s in (0, 1, 2)]
    con = Console(["model", "seed"], "recon_mse", total=1, stream=out, live=False)
    con.on_trial_complete(0, [], fake("TERMINATED", {**members[0], "_stack": json.dumps(members)}, {
        "status": "completed", "epoch": 25, "recon_mse": 0.5,
        "members_json": json.dumps([{"recon_mse": 0.43}, {"recon_mse": 0.42}, {"recon_mse": 0.44}])}))
    assert out.getvalue().splitlines() == ["[1/1] completed vae_mlp  seed=0,1,2  recon_mse 0.42 to 0.44, epoch 25"]


def test_best_is_said_in_plain_words():
    best = {"metric": "cls_fid", "mode": "min", "trial_id": "a_00001", "cls_fid": 42.7749, "model": "rae_l2",
            "latent_dim": 10, "seed": 0, "beta": None, "kernel": "imq"}
    assert best_words(best, ["model", "latent_dim", "seed", "beta"]) == \
        "best (min cls_fid): rae_l2  latent_dim=10  seed=0: cls_fid 42.77 (trial a_00001)"
    assert [fmt(v) for v in (3, 2.0, 0.000123456, float("nan"), None)] == ["3", "2", "0.0001235", "—", "—"]


@pytest.mark.slow
def test_a_smoke_sweep_prints_a_screenful_plus_one_line_per_trial(tmp_path, data_root):
    out = run_sweep(REPO / "raygen" / "sweeps" / "gan_vs_vae.yaml", tmp_path / "runs", data_root, "--smoke",
                    "--num-cpus", "2")
    text = out.stdout + out.stderr
    trials = len(load_sweep("gan_vs_vae").grid(smoke=True))
    lines = text.splitlines()
    assert len(lines) <= 25 + trials, text[-3000:]
    done = [ln for ln in lines if re.match(r"\[\s*\d+/\d+\] completed ", ln)]
    assert len(done) == trials and all("seed=" in ln and "cls_fid" in ln for ln in done)
    assert any(ln.split("] completed ")[1].startswith("vae_conv  seed=0  latent_dim=") for ln in done)
    assert text.count("no training split here") == 1  # the offline fallback said once, as a note
    assert "GenerativeTrainable_" not in text and "Traceback" not in text and "np.int64" not in text
    # the best configuration by its mean over seeds, as the report's verdict chooses
    assert re.search(r"^best \(min cls_fid, mean over 3 seeds\): \S+", text, re.M) and "benchmark:" in text
