"""End-of-trial metrics. Each metric family is a function ``(model, data, ev) -> dict``
registered with ``@metric(name, columns=...)``; ``evaluate`` runs them all, batched, on the
trial's device, and records any family that could not run in ``metric_errors`` (its
declared columns left empty) instead of failing the trial.

Families: reconstruction error; the domain classifier's metrics (always available:
``classifier.py``); pytorch-fid's Inception metrics (FID, IS; ``fid.py``), which need the
Inception weights file. Generated samples are drawn once per evaluation and shared by the
families; reference features of the held-out images are cached on disk per (dataset,
split, extractor, count) and reused by every trial of every sweep (``diskcache.py``).

Sample counts: ``eval_samples`` generated samples (10,000 by default) against up to as
many held-out images; on a CPU the Inception metrics use at most ``inception_cpu_samples``
of them (its forward pass runs at a few images per second there). Every row records the
counts, extractor and reference split it used. The seeds are vague here: seed 001 reports
FID 18.24 / 28.56 and IS 2.76 with no extractor, sample count or reference set; seed 004
(section 4.2) computes FID "from 10 000 generated datapoints per test dataset". We follow
seed 004: 10,000 samples against the test split (its held-out part when training on it).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from . import losses, scores
from .diskcache import cached, default_cache_dir, entry

Metric = Callable[..., dict]
METRICS: dict[str, Metric] = {}
COLUMNS: dict[str, tuple[str, ...]] = {}  # family -> the columns it fills (left empty when it fails)


def metric(name: str, columns: tuple[str, ...] = ()):
    def add(fn: Metric) -> Metric:
        METRICS[name] = fn
        COLUMNS[name] = columns
        return fn
    return add


@torch.no_grad()
def batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch: int = 500) -> torch.Tensor:
    return torch.cat([fn(x[i:i + batch]) for i in range(0, len(x), batch)])


@torch.no_grad()
def generate(model, n: int, batch: int = 500) -> torch.Tensor:
    return torch.cat([model.sample(min(batch, n - i)) for i in range(0, n, batch)])


@dataclass
class Eval:
    """One evaluation's settings (from the trial's ``TrainConfig`` and ``Context``) and the
    generated samples its families share."""

    n: int  # held-out images scored (reconstructions, reference features)
    samples: int = 10000  # generated samples
    inception_cpu_samples: int = 500  # cap for the Inception metrics on a CPU (0: no cap)
    fid_weights: str = ""
    holdout: int = 1000
    seed: int = 0
    data_root: Path | None = None
    cache_dir: Path = field(default_factory=default_cache_dir)
    _fake: torch.Tensor | None = field(default=None, repr=False)

    def generated(self, model, data, k: int) -> torch.Tensor:
        """The first ``k`` generated samples in [0, 1] (the same ones for every family)."""
        if self._fake is None or len(self._fake) < k:
            torch.manual_seed(self.seed)  # the same samples whatever ran before (evaluate forks the RNG)
            self._fake = data.to_unit(generate(model, k)).clamp(0, 1)
        return self._fake[:k]


def is_image(data) -> bool:
    return len(data.shape) == 3


@torch.no_grad()
def extract(extractor, x01: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and class probabilities of images in [0, 1], in batches."""
    feats, probs = [], []
    for i in range(0, len(x01), batch):
        f, logits = extractor.extract(x01[i:i + batch])
        feats.append(f.float())
        probs.append(logits.float().softmax(1))
    return torch.cat(feats), torch.cat(probs)


def reference(extractor, data, n: int, batch: int, cache_dir: Path) -> dict[str, torch.Tensor]:
    """Features and Gaussian statistics of the first ``n`` held-out images, cached per
    (dataset, split, extractor, n)."""
    def compute():
        feats, _ = extract(extractor, data.to_unit(data.eval.x[:n]), batch)
        mu, sigma = scores.gaussian_stats(feats)
        return {"feats": feats.cpu(), "mu": mu.cpu(), "sigma": sigma.cpu()}

    ref = cached(entry(cache_dir, "reference", data.name, data.eval_split, extractor.tag, n), compute)
    return {k: v.to(data.eval.x.device) for k, v in ref.items()}


def feature_scores(extractor, fake01: torch.Tensor, ref: dict, batch: int) -> tuple[dict, torch.Tensor]:
    """FID, IS, KID, precision and recall of generated images against reference features;
    also returns the class probabilities of the generated images."""
    feats, probs = extract(extractor, fake01, batch)
    precision, recall = scores.precision_recall(ref["feats"], feats)
    return {"fid": scores.feature_frechet(feats, ref["mu"], ref["sigma"]),
            "is": scores.inception_score(probs), "kid": scores.kid(ref["feats"], feats),
            "precision": precision, "recall": recall}, probs


def recon_fid(extractor, model, data, n: int, ref: dict, batch: int) -> float:
    """FID of held-out images passed through encoder and decoder against the same images
    (Ghosh et al. 2020 report it beside the generation FID)."""
    x_hat = data.to_unit(batched(model.reconstruct, data.eval.x[:n])).clamp(0, 1)
    return scores.feature_frechet(extract(extractor, x_hat, batch)[0], ref["mu"], ref["sigma"])


# --- families ------------------------------------------------------------------------


@metric("reconstruction")
@torch.no_grad()
def reconstruction(model, data, ev: Eval) -> dict:
    """Pixel MSE (seed 001's 'reconstruction error', 0.092) and per-pixel BCE of held-out
    images passed through encoder and decoder, both on [0, 1]; for images, their
    sharpness (edge energy relative to the inputs', ``scores.sharpness``). Point data (no
    range) gives the MSE on the data's own scale."""
    if not model.has_encoder:
        return {}
    x = data.eval.x[:ev.n]
    x_hat = batched(model.reconstruct, x)
    out = {"recon_mse": float(losses.pixel_mse(data.to_unit(x_hat), data.to_unit(x)))}
    if data.data_range is not None:
        out["recon_bce"] = float(losses.pixel_bce(data.to_unit(x_hat), data.to_unit(x)))
    if is_image(data):
        out["recon_sharpness"] = scores.sharpness(data.to_unit(x_hat).clamp(0, 1), data.to_unit(x))
    return out


CLASSIFIER_NAMES = {"fid": "cls_fid", "is": "cls_is", "kid": "kid", "precision": "precision", "recall": "recall"}


@metric("classifier", columns=("cls_fid", "cls_is", "kid", "precision", "recall", "cls_coverage", "cls_entropy",
                               "cls_fid_recon", "classifier_acc", "cls_samples", "cls_extractor"))
def classifier_metrics(model, data, ev: Eval) -> dict:
    """The domain classifier's view: cls_fid (its penultimate features), cls_is, KID and
    precision/recall on the same features, class coverage and entropy (mode collapse)."""
    from . import classifier

    if not is_image(data):
        return {}
    clf, info = classifier.load(data.name, ev.data_root, ev.cache_dir, model.device, holdout=ev.holdout)
    batch = 1000
    ref = reference(clf, data, ev.n, batch, ev.cache_dir)
    got, probs = feature_scores(clf, ev.generated(model, data, ev.samples), ref, batch)
    out = {CLASSIFIER_NAMES[k]: v for k, v in got.items()}
    out["cls_coverage"], out["cls_entropy"] = scores.class_coverage(probs)
    if model.has_encoder:
        out["cls_fid_recon"] = recon_fid(clf, model, data, ev.n, ref, batch)
    out.update(classifier_acc=info["accuracy"], cls_samples=ev.samples, cls_extractor=clf.describe)
    return out


INCEPTION_NAMES = {"fid": "fid", "is": "inception_score", "kid": "inception_kid",
                   "precision": "inception_precision", "recall": "inception_recall"}


@metric("inception", columns=("fid", "inception_score", "fid_recon", "inception_kid", "inception_precision",
                              "inception_recall", "fid_samples", "fid_extractor", "fid_reference"))
def inception_metrics(model, data, ev: Eval) -> dict:
    """pytorch-fid's FID and Inception Score (plus KID, precision/recall on pool3
    features), generation and reconstruction."""
    from . import fid

    if not is_image(data):
        return {}
    device = model.device
    capped = device.type == "cpu" and ev.inception_cpu_samples > 0
    k = min(ev.samples, ev.inception_cpu_samples) if capped else ev.samples
    n = min(ev.n, k)
    net = fid.load(ev.fid_weights, device)
    batch = 200 if device.type == "cuda" else 50
    ref = reference(net, data, n, batch, ev.cache_dir)
    got, _ = feature_scores(net, ev.generated(model, data, ev.samples)[:k], ref, batch)
    out = {INCEPTION_NAMES[key]: v for key, v in got.items()}
    if model.has_encoder:
        out["fid_recon"] = recon_fid(net, model, data, n, ref, batch)
    out.update(fid_samples=k, fid_extractor=net.describe, fid_reference=f"{data.name}/{data.eval_split} ({n} images)")
    return out


# --- running them --------------------------------------------------------------------


def evaluate(model, data, n: int, cfg=None, ctx=None) -> dict:
    """Run every registered family; failures become ``metric_errors`` text, not exceptions.
    ``cfg`` (TrainConfig) and ``ctx`` (models.base.Context) give the settings and caches;
    defaults when absent. Samples are drawn with the trial's seed inside a forked RNG, so the
    scores are reproducible and evaluating never changes the training's random stream."""
    from .config import TrainConfig
    from .models.base import Context

    cfg, ctx = cfg or TrainConfig(), ctx or Context()
    ev = Eval(n=n, samples=cfg.eval_samples, inception_cpu_samples=cfg.inception_cpu_samples,
              fid_weights=cfg.fid_weights, holdout=cfg.holdout, seed=cfg.seed, data_root=ctx.data_root,
              cache_dir=ctx.cache_dir)
    model.eval()
    t0 = time.perf_counter()
    out: dict = {}
    errors = []
    with torch.random.fork_rng():
        for name, fn in METRICS.items():
            try:
                out.update(fn(model, data, ev))
            except Exception as exc:  # a metric that cannot run must not lose the trial
                out.update(dict.fromkeys(COLUMNS[name]))
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
    out["metric_errors"] = "; ".join(errors) if errors else None
    out["eval_samples"] = n
    out["eval_split"] = data.eval_split
    out["train_split"] = data.train_split
    out["eval_time_s"] = time.perf_counter() - t0
    model.train()
    return out
