"""The offline metrics on real MNIST: the domain classifier (trained once per test session,
in the session's cache), classifier-FID / IS / coverage on real images, and a real VAE
before and after training."""
from __future__ import annotations

import math

import pytest
import torch

from raygen.core.diskcache import default_cache_dir
from raygen.core.registry import DATASETS
from raygen.engine.trial import Trial
from raygen.metrics import classifier, scores
from raygen.metrics.evaluate import extract


@pytest.fixture(scope="module")
def mnist(data_root):
    """The whole MNIST test split in [0, 1] (10,000 images) and its labels."""
    return DATASETS.get("mnist")(data_root, "test", False)


@pytest.fixture(scope="module")
def clf(data_root):
    model, info = classifier.load("mnist", data_root, default_cache_dir(), "cpu")
    return model, info


def stats(model, x):
    feats, probs = extract(model, x, 1000)
    return scores.gaussian_stats(feats), probs


def test_the_classifier_is_accurate_and_trained_once(clf, data_root):
    model, info = clf
    assert info["accuracy"] >= 0.98, info
    assert info["train_split"] == "test[minus holdout 1000]" and info["eval_split"] == "test[holdout 1000]"
    # one checkpoint for this split (tests of other holdouts add theirs beside it)
    (path,) = (default_cache_dir() / "classifiers").glob("mnist-test_minus_holdout_1000-*.pt")
    classifier._LOADED.clear()  # a new worker process: loads from disk, does not retrain
    again, info2 = classifier.load("mnist", data_root, default_cache_dir(), "cpu")
    assert info2["id"] == info["id"] and again.tag == model.tag
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_cls_fid_of_two_test_halves_is_small_and_grows_with_noise(clf, mnist):
    model, _ = clf
    x, _ = mnist
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    a, b = x[perm[:5000]], x[perm[5000:]]
    (mu_a, s_a), _ = stats(model, a)
    g = torch.Generator().manual_seed(1)
    fids = []
    for sigma in (0.0, 0.1, 0.2, 0.3, 0.5):
        noisy = (b + sigma * torch.randn(b.shape, generator=g)).clamp(0, 1)
        (mu, s), _ = stats(model, noisy)
        fids.append(scores.frechet_distance(mu_a, s_a, mu, s))
    assert all(f1 < f2 for f1, f2 in zip(fids, fids[1:])), fids
    assert fids[0] < 0.05 * fids[-1], fids


def test_cls_is_of_real_mnist_is_above_9_and_covers_every_class(clf, mnist):
    model, _ = clf
    x, y = mnist
    _, probs = stats(model, x)
    assert scores.inception_score(probs) > 9
    hit, entropy = scores.class_coverage(probs)
    assert hit == 10 and entropy > 0.99 * math.log(10)
    _, probs = stats(model, x[y == 3])  # a generator collapsed onto one digit
    assert scores.class_coverage(probs)[0] == 1 and scores.inception_score(probs) < 1.5


def test_a_trained_vae_scores_a_better_cls_fid_than_untrained(data_root):
    cfg = {"model": "vae_mlp", "dataset": "mnist", "split": "test", "epochs": 2, "eval_samples": 500}
    t = Trial(cfg, data_root=str(data_root))
    before = t.evaluate(images=False)
    for _ in range(2):
        after = t.train_epoch()
    assert after["status"] == "completed"
    # measured: 935 untrained, 707 after 2 epochs, 580 after 6 (a 2-d latent MLP VAE stays blurry)
    assert after["cls_fid"] < 0.85 * before["cls_fid"], (before["cls_fid"], after["cls_fid"])
    assert after["cls_fid_recon"] < after["cls_fid"]  # reconstructions are closer to the data than samples
    assert after["cls_coverage"] > before["cls_coverage"]  # measured: 1 class -> 7
    assert after["cls_samples"] == 500 and after["classifier_acc"] >= 0.98
    assert "mnist CNN" in after["cls_extractor"] and "test[minus holdout 1000]" in after["cls_extractor"]
    # Inception weights are absent in the test session: empty columns and the reason, not a crash
    assert after["fid"] is None and after["inception_score"] is None
    assert "RAYGEN_FID_WEIGHTS" in after["metric_errors"] and "does not exist" in after["metric_errors"]
    again = t.evaluate(images=False)
    assert again["cls_fid"] == after["cls_fid"]  # seeded: the same samples every evaluation
