"""On a GPU (skipped without one; ``benchmarks/gpu.sh`` runs them where one is lent): every
model trains and samples on CUDA in each precision, a trial runs end to end there, stacked
trials match separate ones, and a sweep's trials get the GPU through Ray."""
from __future__ import annotations

import math

import pytest
import torch

from raygen.core.registry import MODELS
from raygen.engine import precision
from raygen.engine.config import split_config

from conftest import TINY

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]
CUDA = torch.device("cuda")


@pytest.mark.parametrize("p", precision.PRECISIONS)
@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_trains_and_samples_on_cuda(name, p, mnist_batch):
    if precision.unsupported(p, CUDA):
        pytest.skip(precision.unsupported(p, CUDA))
    _, cls, cfg = split_config({"model": name, **TINY.get(name, {})})
    torch.manual_seed(0)
    model = cls(cfg, (1, 28, 28), num_classes=10).to(CUDA)
    opts = model.configure_optimizers()
    assert all(o.defaults["fused"] for o in opts.values())  # fused Adam on CUDA too
    lo, hi = cfg.data_range
    x, y = (mnist_batch * (hi - lo) + lo).to(CUDA), (torch.arange(16) % 10).to(CUDA)
    for _ in range(3):
        with precision.steps(p, CUDA):
            out = model.train_step(x, y, opts)
        assert all(v.device.type == "cuda" and math.isfinite(float(v)) for v in out.values()), out
    s = model.eval().sample(8)
    assert s.device.type == "cuda" and s.shape == (8, 1, 28, 28) and torch.isfinite(s).all()


def test_a_trial_runs_end_to_end_on_cuda(data_root):
    from raygen.engine.trial import Trial

    trial = Trial({"model": "vae", "hidden": [64, 64], "epochs": 2, "max_batches": 20, "eval_samples": 500,
                   "train_precision": "bf16"}, device=CUDA, data_root=str(data_root))
    result = trial.fit()
    assert result["status"] == "completed" and result["device"] == "cuda" and math.isfinite(result["cls_fid"])
    assert trial.data.train.x.device.type == "cuda"  # the dataset lives on the GPU: no copy per batch


def test_stacked_trials_match_separate_ones_on_cuda(data_root):
    from raygen.engine.stacking import StackedTrial
    from raygen.engine.trial import Trial

    configs = [{"model": "vae", "hidden": [64, 64], "epochs": 2, "max_batches": 10, "eval_samples": 200, "seed": s}
               for s in range(4)]
    alone = [Trial(c, device=CUDA, data_root=str(data_root)).fit()["loss"] for c in configs]
    stacked = [r["loss"] for r in StackedTrial(configs, device=CUDA, data_root=str(data_root)).fit()]
    assert stacked == pytest.approx(alone, rel=1e-3)


def test_a_sweep_packs_its_trials_on_the_gpu(tmp_path, data_root):
    pytest.importorskip("ray")
    import pandas as pd

    from sweep_helpers import only_run, run_sweep

    run_sweep("gan_vs_vae_quick", tmp_path / "runs", data_root, "--smoke", "--gpus-per-trial", "0.25")
    df = pd.read_parquet(only_run(tmp_path / "runs", "gan_vs_vae_quick") / "results.parquet")
    assert (df["status"] == "completed").all() and (df["device"] == "cuda").all()
