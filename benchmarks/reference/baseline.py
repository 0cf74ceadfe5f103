"""The evaluation as it ran before features, reconstructions and reference statistics were
shared and cached in memory (and before the faster pooling and KID), kept so ``python -m
benchmarks.evaluation --table3`` can time it beside ``evaluate`` and the tests can check
that both give the same numbers. Not used by trials. What it shares with the current
evaluation unchanged (the loop over families, their column names, the Inception sample
counts, KID's kernel) it imports from raygen; what is here is what differs.

Its classifier features go through ``DomainClassifier.features`` (PyTorch's max-pooling),
its reference statistics are read from the disk cache at every evaluation, the held-out
images are reconstructed once per family, and Inception scores reconstructions always.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from raygen.core.diskcache import cached, default_cache_dir, entry
from raygen.metrics import classifier, scores
from raygen.metrics.evaluate import FAMILIES, Family, evaluate, generate, is_image
from raygen.metrics.families import CLASSIFIER_NAMES, INCEPTION_NAMES, inception_plan
from raygen.models import losses
from raygen.models.base import batched


@dataclass
class OldEval:
    n: int
    samples: int = 10000
    inception_cpu_samples: int = 500
    fid_weights: str = ""
    holdout: int = 1000
    seed: int = 0
    data_root: Path | None = None
    cache_dir: Path = field(default_factory=default_cache_dir)
    _fake: torch.Tensor | None = field(default=None, repr=False)

    def generated(self, model, data, k: int) -> torch.Tensor:
        if self._fake is None or len(self._fake) < k:
            torch.manual_seed(self.seed)
            self._fake = data.to_unit(generate(model, k)).clamp(0, 1)
        return self._fake[:k]


def old_kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = 50, subset_size: int = 1000,
            seed: int = 0) -> float:
    m, kern = scores.kid_kernel(real, fake, subset_size)
    g = torch.Generator().manual_seed(seed)
    off = lambda k: (k.sum() - k.diagonal().sum()) / (m * (m - 1))
    pick = lambda x: x[torch.randperm(len(x), generator=g)[:m].to(x.device)]
    kxx = off(kern(real, real)) if m == len(real) else None
    total = 0.0
    for _ in range(subsets):
        x, y = (real, pick(fake)) if kxx is not None else (pick(real), pick(fake))
        total += float((kxx if kxx is not None else off(kern(x, x))) + off(kern(y, y)) - 2 * kern(x, y).mean())
    return total / subsets


def _old_features(extractor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(extractor, classifier.DomainClassifier):
        f = extractor.features(x)
        return f, extractor.head(f)
    return extractor.extract(x)


@torch.no_grad()
def old_extract(extractor, x01: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    feats, probs = [], []
    for i in range(0, len(x01), batch):
        f, logits = _old_features(extractor, x01[i:i + batch])
        feats.append(f.float())
        probs.append(logits.float().softmax(1))
    return torch.cat(feats), torch.cat(probs)


def old_reference(extractor, data, n: int, batch: int, cache_dir: Path) -> dict[str, torch.Tensor]:
    def compute():
        feats, _ = old_extract(extractor, data.to_unit(data.eval.x[:n]), batch)
        mu, sigma = scores.gaussian_stats(feats)
        return {"feats": feats.cpu(), "mu": mu.cpu(), "sigma": sigma.cpu()}

    ref = cached(entry(cache_dir, "reference", data.name, data.eval_split, extractor.tag, n), compute,
                 keys=("feats", "mu", "sigma"))
    return {k: v.to(data.eval.x.device) for k, v in ref.items()}


def old_feature_scores(extractor, fake01: torch.Tensor, ref: dict, batch: int) -> tuple[dict, torch.Tensor]:
    feats, probs = old_extract(extractor, fake01, batch)
    precision, recall = scores.precision_recall(ref["feats"], feats)
    return {"fid": scores.feature_frechet(feats, ref["mu"], ref["sigma"]),
            "is": scores.inception_score(probs), "kid": old_kid(ref["feats"], feats),
            "precision": precision, "recall": recall}, probs


def old_recon_fid(extractor, model, data, n: int, ref: dict, batch: int) -> float:
    x_hat = data.to_unit(batched(model.reconstruct, data.eval.x[:n])).clamp(0, 1)
    return scores.feature_frechet(old_extract(extractor, x_hat, batch)[0], ref["mu"], ref["sigma"])


def old_inception(model, data, ev: OldEval) -> dict:
    if not is_image(data):
        return {}
    net, k, n, batch = inception_plan(model, ev)
    ref = old_reference(net, data, n, batch, ev.cache_dir)
    got, _ = old_feature_scores(net, ev.generated(model, data, ev.samples)[:k], ref, batch)
    out = {INCEPTION_NAMES[key]: v for key, v in got.items()}
    if model.has_encoder:
        out["fid_recon"] = old_recon_fid(net, model, data, n, ref, batch)
    out.update(fid_samples=k, fid_extractor=net.describe, fid_reference=f"{data.name}/{data.eval_split} ({n} images)")
    return out


def old_classifier(model, data, ev: OldEval) -> dict:
    if not is_image(data):
        return {}
    clf, info = classifier.load(data.name, ev.data_root, ev.cache_dir, model.device, holdout=ev.holdout)
    batch = 1000
    ref = old_reference(clf, data, ev.n, batch, ev.cache_dir)
    got, probs = old_feature_scores(clf, ev.generated(model, data, ev.samples), ref, batch)
    out = {CLASSIFIER_NAMES[k]: v for k, v in got.items()}
    out["cls_coverage"], out["cls_entropy"] = scores.class_coverage(probs)
    if model.has_encoder:
        out["cls_fid_recon"] = old_recon_fid(clf, model, data, ev.n, ref, batch)
    out.update(classifier_acc=info["accuracy"], cls_samples=ev.samples, cls_extractor=clf.describe)
    return out


@torch.no_grad()
def old_reconstruction(model, data, ev: OldEval) -> dict:
    if not model.has_encoder:
        return {}
    x = data.eval.x[:ev.n]
    x_hat = batched(model.reconstruct, x)
    out = {"recon_mse": float(losses.pixel_mse(data.to_unit(x_hat), data.to_unit(x)))}
    if data.data_range is not None:
        out["recon_bce"] = float(losses.pixel_bce(data.to_unit(x_hat), data.to_unit(x)))
        out["recon_mse_pm1"] = 4.0 * out["recon_mse"]
    if is_image(data):
        out["recon_sharpness"] = scores.sharpness(data.to_unit(x_hat).clamp(0, 1), data.to_unit(x))
    return out


OLD_FAMILIES = {"inception": old_inception, "classifier": old_classifier, "reconstruction": old_reconstruction}


def old_evaluate(model, data, ev: OldEval) -> dict:
    """``evaluate`` (the same loop, timings and error handling) over the previous families."""
    # the same columns as today's families of the same names: only how they are computed differs
    families = {name: Family(fn, FAMILIES.get(name).columns) for name, fn in OLD_FAMILIES.items()}
    return evaluate(model, data, ev, families={**families, "model": Family(FAMILIES.get("model").fn)})
