"""A trial's configuration: one flat dict (a Ray Tune config), split into the trainer's
settings (``TrainConfig``) and the model's own dataclass ``Config``.

Every key must belong to one of the two; an unknown key is an error that lists the
valid ones. Values are coerced to the field's type (``core.settings``; YAML reads ``1e-3``
as a string).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from raygen.core.errors import RaygenError, did_you_mean
from raygen.core.settings import from_dict, setting


@dataclass
class TrainConfig:
    model: str = "vae_conv"
    dataset: str = "mnist"
    # train | test | auto (train if present or downloadable, else test minus a holdout)
    split: str = setting("auto", choices=("train", "test", "auto"))
    eval_split: str = setting("test", choices=("train", "test"))  # equal to split -> a holdout is carved
    holdout: int = setting(1000, ge=1)  # evaluation images carved from the training split when the two are equal
    # Training images held out to choose configurations on (a budget sweep's select_on: validation):
    # every metric is also measured there, as val_<metric>; 0: none
    validation: int = setting(0, ge=0)
    limit: int = setting(0, ge=0)  # keep only the first N training items (0: all)
    seed: int = setting(0, ge=0, le=2**32 - 1)  # numpy seeds modulo 2^32: a larger one would alias a smaller
    epochs: int = setting(10, ge=1, le=1_000_000)
    batch_size: int = setting(128, ge=1, le=1_000_000)
    max_batches: int = setting(0, ge=0)  # batches per epoch (0: the whole split); smoke runs use a few
    # Generated samples (and held-out images, up to the split's size) the metrics score. Bounded:
    # they are held in memory at once (10^5 MNIST samples: 0.3 GB).
    eval_samples: int = setting(10000, ge=1, le=200_000)
    # On a CPU, where Inception is slow, the Inception metrics use at most this many; 0: all
    inception_cpu_samples: int = setting(500, ge=0, le=200_000)
    fid_weights: str = ""  # absolute path of pytorch-fid's Inception weights; else $RAYGEN_FID_WEIGHTS, hub cache
    inception_recon: bool = False  # also Inception's FID of reconstructions (fid_recon): a second Inception pass
    eval_every: int = setting(0, ge=0)  # also evaluate every K epochs (0: only at the end)
    # The arithmetic of the training steps (engine/precision.py): one for every model of a comparison
    # (not ``precision``: that is the improved-precision metric's column)
    train_precision: str = setting("fp32", choices=("fp32", "tf32", "bf16"))
    # Bookkeeping by the clock (trainable.py): a Ray Tune step (one report) runs as many epochs as
    # fit in report_seconds, unless report_every fixes the epochs per step; a checkpoint is written
    # at most every checkpoint_seconds (0: every step), and always at the end and on a clean stop.
    report_seconds: float = setting(10.0, ge=0, le=86_400)
    report_every: int = setting(0, ge=0)  # epochs per Ray Tune step (0: by the clock)
    checkpoint_seconds: float = setting(60.0, ge=0, le=86_400)


def split_config(flat: dict[str, Any]):
    """flat trial config -> (TrainConfig, model class, model Config). Raises RaygenError."""
    from raygen.core.registry import MODELS
    from raygen.record.transport import STACK

    flat = {k: v for k, v in flat.items() if k != STACK}  # a typo like ``_epochs`` is an unknown key
    odd = [k for k in flat if not isinstance(k, str)]
    if odd:  # YAML reads ``1: 2`` as a number key
        raise RaygenError(f"config key {odd[0]!r} is not a setting's name; keys are names like epochs or lr")
    train_keys = {f.name for f in fields(TrainConfig)}
    model_cls = MODELS.get(str(flat.get("model", TrainConfig.model)))
    model_keys = {f.name for f in fields(model_cls.Config)}
    unknown = sorted(set(flat) - train_keys - model_keys)
    if unknown:
        raise RaygenError(
            f"unknown config key(s) {', '.join(unknown)} for model {model_cls.registry_name!r}."
            f"{did_you_mean(unknown[0], train_keys | model_keys)} Trainer keys: {', '.join(sorted(train_keys))}. "
            f"Model keys: {', '.join(sorted(model_keys))}.")
    train = from_dict(TrainConfig, {k: v for k, v in flat.items() if k in train_keys}, "trainer config")
    model_cfg = from_dict(model_cls.Config, {k: v for k, v in flat.items() if k in model_keys},
                          f"model {model_cls.registry_name!r} config")
    return train, model_cls, model_cfg


def batch_refusal(model, train: TrainConfig) -> str | None:
    """Why ``model`` cannot train on ``train``'s batches, or None: batch normalisation needs two
    items a batch in training (torch refuses one, in the first step), which batch_size 1 or
    limit 1 gives (a smaller last batch is dropped)."""
    from torch import nn

    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return None
    for key in ("batch_size", "limit"):
        if getattr(train, key) == 1:
            return (f"{key}=1: {type(model).registry_name} normalises over each batch (batch norm), which needs "
                    f"at least 2 items; set {key} to 2 or more")
    return None
