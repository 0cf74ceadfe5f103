"""The metric families ``evaluate`` runs, each declaring the columns it fills.

- ``reconstruction``: pixel error and sharpness of held-out images passed through the model;
- ``classifier``: FID, IS, KID, precision/recall and class coverage on the features of a
  small CNN raygen trains per dataset (``classifier.py``): no download, always there;
- ``inception``: the same on pytorch-fid's InceptionV3 (``inception.py``), which needs its
  weights file;
- ``model``: whatever the model measures of itself (``GenerativeModel.extra_metrics``).
"""
from __future__ import annotations

import torch

from raygen.metrics import classifier, inception, scores
from raygen.metrics.evaluate import Eval, feature_scores, is_image, metric, reference
from raygen.models import losses
from raygen.record.columns import HIGHER, LOWER, Column
from raygen.record.keys import Kind


def extract_batch(device: torch.device, cpu: int, cuda: int) -> int:
    """Images per extractor call: small on a CPU (activations stay in its caches), large
    on a GPU (fewer launches)."""
    return cuda if device.type == "cuda" else cpu


def inception_plan(model, ev: Eval) -> tuple[inception.InceptionExtractor, int, int, int]:
    """pytorch-fid's network on the model's device; the generated samples and held-out images
    it scores (on a CPU, where it is slow, at most ``ev.inception_cpu_samples``); its batch."""
    device = model.device
    capped = device.type == "cpu" and ev.inception_cpu_samples > 0
    k = min(ev.samples, ev.inception_cpu_samples) if capped else ev.samples
    return inception.load(ev.fid_weights, device), k, min(ev.n, k), extract_batch(device, 50, 200)


def generation_scores(extractor, model, data, ev: Eval, k: int, ref: dict, batch: int) -> tuple[dict, torch.Tensor]:
    """FID, IS, KID, precision and recall of the first ``k`` generated samples; also
    their class probabilities."""
    feats, probs = ev.features(extractor, "generated", ev.generated(model, data, ev.samples)[:k], batch)
    return feature_scores(feats, probs, ref), probs


def recon_fid(extractor, model, data, ev: Eval, n: int, ref: dict, batch: int) -> float:
    """FID of held-out images passed through encoder and decoder against the same images
    (Ghosh et al. 2020 report it beside the generation FID)."""
    x_hat = data.to_unit(ev.reconstructed(model, data, n)).clamp(0, 1)
    return scores.feature_frechet(ev.features(extractor, "reconstructed", x_hat, batch)[0], ref["mu"], ref["sigma"])


INCEPTION_NAMES = {"fid": "fid", "is": "inception_score", "kid": "inception_kid",
                   "precision": "inception_precision", "recall": "inception_recall"}


@metric("inception", columns=(
    Column("fid", "FID", LOWER, rank=1), Column("inception_score", "IS", HIGHER, rank=6),
    Column("fid_recon", "recon. FID", LOWER, compare=False),
    Column("inception_kid", "KID (Inception)", LOWER, compare=False),
    Column("inception_precision", "precision (Inception)", HIGHER, compare=False),
    Column("inception_recall", "recall (Inception)", HIGHER, compare=False),
    Column("fid_samples", "Inception samples", kind=Kind.COUNT),
    Column("fid_extractor", "FID extractor", kind=Kind.BOOKKEEPING),
    Column("fid_reference", "FID reference set", kind=Kind.BOOKKEEPING)))
def inception_metrics(model, data, ev: Eval) -> dict:
    """pytorch-fid's FID and Inception Score (plus KID, precision/recall on pool3
    features) of generated samples; of reconstructions too with ``inception_recon`` (its
    forward pass is the evaluation's main cost)."""
    if not is_image(data):
        return {}
    net, k, n, batch = inception_plan(model, ev)
    ref = reference(net, data, n, batch, ev.cache_dir)
    got, _ = generation_scores(net, model, data, ev, k, ref, batch)
    out = {INCEPTION_NAMES[key]: v for key, v in got.items()}
    if model.has_encoder and ev.inception_recon:
        out["fid_recon"] = recon_fid(net, model, data, ev, n, ref, batch)
    out.update(fid_samples=k, fid_extractor=net.describe, fid_reference=f"{data.name}/{data.eval_split} ({n} images)")
    return out


CLASSIFIER_NAMES = {"fid": "cls_fid", "is": "cls_is", "kid": "kid", "precision": "precision", "recall": "recall"}


@metric("classifier", columns=(
    Column("cls_fid", "FID (domain classifier)", LOWER, rank=2),
    Column("cls_is", "IS (domain classifier)", HIGHER, rank=7),
    Column("kid", "KID", LOWER, rank=3), Column("precision", "precision", HIGHER), Column("recall", "recall", HIGHER),
    # the evaluator's own accuracy on real images: the same in every trial, never "best"
    Column("classifier_acc", "classifier acc.", HIGHER, compare=False),
    Column("cls_coverage", "classes covered", HIGHER, compare=False),
    Column("cls_entropy", "class entropy (nats)", HIGHER, compare=False),
    Column("cls_fid_recon", "recon. FID (domain classifier)", LOWER, compare=False),
    Column("cls_samples", "samples scored", kind=Kind.COUNT),
    Column("cls_extractor", "feature extractor", kind=Kind.BOOKKEEPING)))
def classifier_metrics(model, data, ev: Eval) -> dict:
    """The domain classifier's view: cls_fid (its penultimate features), cls_is, KID and
    precision/recall on the same features, class coverage and entropy (mode collapse)."""
    if not is_image(data):
        return {}
    clf, info = classifier.load(data.name, ev.data_root, ev.cache_dir, model.device, holdout=ev.holdout)
    batch = extract_batch(model.device, 250, 2000)
    ref = reference(clf, data, ev.n, batch, ev.cache_dir)
    got, probs = generation_scores(clf, model, data, ev, ev.samples, ref, batch)
    out = {CLASSIFIER_NAMES[k]: v for k, v in got.items()}
    out["cls_coverage"], out["cls_entropy"] = scores.class_coverage(probs)
    if model.has_encoder:
        out["cls_fid_recon"] = recon_fid(clf, model, data, ev, ev.n, ref, batch)
    out.update(classifier_acc=info["accuracy"], cls_samples=ev.samples, cls_extractor=clf.describe)
    return out


@metric("reconstruction", columns=(
    Column("recon_mse", "recon. MSE", LOWER, rank=4), Column("recon_bce", "recon. BCE", LOWER, rank=5),
    Column("recon_sharpness", "recon. sharpness (data = 1)", HIGHER, target=1.0),
    Column("recon_mse_pm1", "recon. MSE, pixels in [-1, 1]", LOWER, compare=False)))
@torch.no_grad()
def reconstruction(model, data, ev: Eval) -> dict:
    """Pixel MSE and per-pixel BCE of held-out images passed through encoder and decoder, on
    [0, 1], and the MSE on [-1, 1] (Chaturvedula's pixel scale, beside their undefined
    'reconstruction error' of 0.092, which we read as this MSE); for images, their sharpness
    (edge energy relative to the inputs', ``scores.sharpness``). Point data (no range) gives
    the MSE on the data's own scale."""
    if not model.has_encoder:
        return {}
    x = data.eval.x[:ev.n]
    x_hat = ev.reconstructed(model, data, ev.n)
    out = {"recon_mse": float(losses.pixel_mse(data.to_unit(x_hat), data.to_unit(x)))}
    if data.data_range is not None:
        out["recon_bce"] = float(losses.pixel_bce(data.to_unit(x_hat), data.to_unit(x)))
        out["recon_mse_pm1"] = 4.0 * out["recon_mse"]  # the same error with pixels scaled to [-1, 1] (Chaturvedula's)
    if is_image(data):
        out["recon_sharpness"] = scores.sharpness(data.to_unit(x_hat).clamp(0, 1), data.to_unit(x))
    return out


@metric("model", of_model=True)
def model_metrics(model, data, ev: Eval) -> dict:
    """The model's own measures (``extra_metrics``; their columns are declared by the model)."""
    return model.extra_metrics(data, ev.n)
