"""The faster evaluation gives the numbers the previous one gave (``metrics.baseline``, a
copy of it), computes what families share once, and keeps the classifier and reference
statistics in memory: a worker's later trials read nothing from disk."""
from __future__ import annotations

from unittest import mock

import pytest
import torch
import torch.nn.functional as F

from benchmarks.reference import baseline
from raygen.engine.trial import Trial
from raygen.metrics import classifier, scores
from raygen.metrics import evaluate as ev_mod
from raygen.metrics.evaluate import Eval, evaluate

CFG = {"model": "vae_mlp", "dataset": "mnist", "split": "test", "epochs": 1, "max_batches": 3,
       "eval_samples": 600, "latent_dim": 4}


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 30, 30)])  # odd sizes after one pooling
def test_classifier_features_equal_the_sequential_forward_exactly(shape):
    torch.manual_seed(0)
    net = classifier.DomainClassifier(shape, 10).eval()
    x = torch.rand(37, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        feats, logits = net.extract(x)
        old = net.features(x)
        assert torch.equal(feats, old) and torch.equal(logits, net.head(old))
    h = torch.randn(5, 4, 9, 7, generator=torch.Generator().manual_seed(2))
    assert torch.equal(classifier.max_pool2(h), F.max_pool2d(h, 2))


@pytest.mark.parametrize("n_real, n_fake, d, subsets, size", [
    (300, 2000, 32, 20, 1000),  # every subset holds all the real samples: the kernel sums reused
    (300, 250, 16, 10, 1000),  # fewer fake than real
    (800, 900, 24, 5, 200),  # random subsets on both sides
])
def test_kid_equals_the_previous_implementation(n_real, n_fake, d, subsets, size):
    g = torch.Generator().manual_seed(n_real + d)
    real = torch.relu(torch.randn(n_real, d, generator=g))
    fake = torch.relu(torch.randn(n_fake, d, generator=g) + 0.1)
    new = scores.kid(real, fake, subsets=subsets, subset_size=size, seed=3)
    old = baseline.old_kid(real, fake, subsets=subsets, subset_size=size, seed=3)
    assert close(new, old, 1e-9), (new, old)
    assert not close(new, baseline.old_kid(real, fake, subsets=subsets, subset_size=size, seed=4), 1e-9)


def settings(trial: Trial, **kw) -> dict:
    c, ctx = trial.cfg, trial.ctx
    return dict(n=min(c.eval_samples, len(trial.data.eval)), samples=c.eval_samples, holdout=c.holdout, seed=c.seed,
                data_root=ctx.data_root, cache_dir=ctx.cache_dir, **kw)


def numbers(out: dict) -> dict:
    return {k: v for k, v in out.items() if isinstance(v, (int, float)) and not k.endswith("_s")}


def test_evaluate_gives_the_previous_implementations_numbers(data_root):
    trial = Trial(CFG, data_root=str(data_root))
    trial.train_epoch()
    old = baseline.old_evaluate(trial.model, trial.data, baseline.OldEval(**settings(trial)))
    new = evaluate(trial.model, trial.data, Eval(**settings(trial)))
    assert old["metric_errors"] == new["metric_errors"] and "inception: WeightsMissing" in new["metric_errors"]
    got, want = numbers(new), numbers(old)
    assert set(got) == set(want) and {"cls_fid", "kid", "precision", "cls_fid_recon", "recon_mse"} <= set(got)
    for k in want:
        assert close(got[k], want[k]), (k, got[k], want[k])


@pytest.mark.slow  # builds and loads InceptionV3 (about 30 s on a loaded CPU)
def test_the_inception_family_gives_the_previous_numbers(data_root, tmp_path):
    from test_inception import write_weights

    weights = tmp_path / "inception.pth"
    write_weights(weights)  # untrained: the code path, never a reported metric
    trial = Trial({**CFG, "eval_samples": 6}, data_root=str(data_root))
    kw = {"fid_weights": str(weights), "inception_cpu_samples": 4}
    family = ev_mod.FAMILIES.get("inception").fn
    old = baseline.old_inception(trial.model, trial.data, baseline.OldEval(**settings(trial, **kw)))
    new = family(trial.model, trial.data, Eval(**settings(trial, inception_recon=True, **kw)))
    assert set(new) == set(old) and new["fid_samples"] == 4
    for k, v in numbers(old).items():
        assert close(new[k], v, 1e-6), (k, new[k], v)
    alone = family(trial.model, trial.data, Eval(**settings(trial, **kw)))
    assert "fid_recon" not in alone and alone["fid"] == new["fid"]  # reconstructions only on request


def test_reconstructions_and_samples_are_computed_once_per_evaluation(data_root):
    trial = Trial(CFG, data_root=str(data_root))
    model = trial.model
    with mock.patch.object(model, "reconstruct", wraps=model.reconstruct) as rec, \
            mock.patch.object(model, "sample", wraps=model.sample) as sample:
        out = trial.evaluate(images=False)
    assert out["cls_fid_recon"] is not None and out["recon_mse"] is not None
    assert rec.call_count == 2  # 600 held-out images in batches of 500, shared by the classifier and reconstruction
    assert sample.call_count == 2  # 600 samples in batches of 500, shared by every family


def test_a_later_trial_in_the_process_reads_nothing_from_disk(data_root):
    Trial(CFG, data_root=str(data_root)).evaluate(images=False)  # the worker's first trial
    later = Trial({**CFG, "seed": 1}, data_root=str(data_root))
    built = []
    init = classifier.DomainClassifier.__init__
    with mock.patch("torch.load", side_effect=AssertionError("read from disk")), \
            mock.patch.object(ev_mod, "cached", side_effect=AssertionError("disk cache consulted")), \
            mock.patch.object(classifier.DomainClassifier, "__init__",
                              lambda self, *a, **k: built.append(1) or init(self, *a, **k)):
        out = later.evaluate(images=False)
    assert "inception: WeightsMissing" in out["metric_errors"]  # the only family that failed
    assert out["metric_errors"].count("\n") == 0 and out["cls_fid"] > 0 and not built
