"""A trial's configuration: one flat dict (a Ray Tune config), split into the trainer's
settings (``TrainConfig``) and the model's own dataclass ``Config``.

Every key must belong to one of the two; an unknown key is an error that lists the
valid ones. Keys that start with ``_`` are internal (the test suite's fault injection,
``trial.Faults``): never a setting, never a results column. Values are coerced to the
field's type (YAML reads ``1e-3`` as a string).
"""
from __future__ import annotations

import json
import typing
from dataclasses import dataclass, fields
from typing import Any

from .errors import RaygenError, did_you_mean
from .fields import allowed, rules, setting


@dataclass
class TrainConfig:
    model: str = "vae_conv"
    dataset: str = "mnist"
    # train | test | auto (train if present or downloadable, else test minus a holdout)
    split: str = setting("auto", choices=("train", "test", "auto"))
    eval_split: str = setting("test", choices=("train", "test"))  # equal to split -> a holdout is carved
    holdout: int = setting(1000, ge=1)  # evaluation images carved from the training split when the two are equal
    limit: int = setting(0, ge=0)  # keep only the first N training items (0: all)
    seed: int = setting(0, ge=0)
    epochs: int = setting(10, ge=1, le=1_000_000)
    batch_size: int = setting(128, ge=1, le=1_000_000)
    max_batches: int = setting(0, ge=0)  # batches per epoch (0: the whole split); smoke runs use a few
    # Generated samples (and held-out images, up to the split's size) the metrics score. Bounded:
    # they are held in memory at once (10^5 MNIST samples: 0.3 GB).
    eval_samples: int = setting(10000, ge=1, le=200_000)
    # On a CPU (3-7 images/s) the Inception metrics use at most this many; 0: all
    inception_cpu_samples: int = setting(500, ge=0, le=200_000)
    fid_weights: str = ""  # absolute path of pytorch-fid's Inception weights; else $RAYGEN_FID_WEIGHTS, hub cache
    inception_recon: bool = False  # also Inception's FID of reconstructions (fid_recon): a second Inception pass
    eval_every: int = setting(0, ge=0)  # also evaluate every K epochs (0: only at the end)
    # Bookkeeping by the clock (trainable.py): a Ray Tune step (one report) runs as many epochs as
    # fit in report_seconds, unless report_every fixes the epochs per step; a checkpoint is written
    # at most every checkpoint_seconds (0: every step), and always at the end and on a clean stop.
    report_seconds: float = setting(10.0, ge=0, le=86_400)
    report_every: int = setting(0, ge=0)  # epochs per Ray Tune step (0: by the clock)
    checkpoint_seconds: float = setting(60.0, ge=0, le=86_400)


def _coerce(value: Any, typ: Any, key: str, where: str) -> Any:
    origin = typing.get_origin(typ)
    if origin is typing.Union or str(origin) == "types.UnionType":  # Optional[...] / X | None
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        return None if value is None else _coerce(value, args[0], key, where)
    try:
        if typ is not bool and isinstance(value, bool):  # YAML's true is no count of epochs
            raise ValueError(value)
        if typ in (int, float) and isinstance(value, (list, tuple, dict)):
            raise TypeError(value)
        if typ is str and not isinstance(value, (str, int, float)):
            raise TypeError(value)
        if typ is bool:
            if isinstance(value, str):
                if value.lower() in ("true", "yes", "1"):
                    return True
                if value.lower() in ("false", "no", "0"):
                    return False
                raise ValueError(value)
            if not isinstance(value, (int, float)):
                raise TypeError(value)
            return bool(value)
        if typ is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if typ is float:
            out = float(value)
            if out != out or out in (float("inf"), float("-inf")):
                raise ValueError(value)
            return out
        if typ is str:
            return str(value)
        if origin in (tuple, list):
            inner = typing.get_args(typ)[0] if typing.get_args(typ) else Any
            seq = value if isinstance(value, (list, tuple)) else [value]
            return tuple(_coerce(v, inner, key, where) for v in seq) if inner is not Any else tuple(seq)
    except (TypeError, ValueError):
        name = getattr(typ, "__name__", str(typ))
        raise RaygenError(f"{where}: {key}={value!r} is not a valid {name}") from None
    return value


def from_dict(cls: type, values: dict[str, Any], where: str) -> Any:
    """Build dataclass ``cls`` from ``values``, coercing types and checking each field's
    allowed values (``setting``); unknown keys are an error."""
    hints = typing.get_type_hints(cls)
    by_name = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise RaygenError(f"{where}: unknown key(s) {', '.join(unknown)}.{did_you_mean(unknown[0], by_name)} "
                          f"Valid keys: {', '.join(sorted(by_name))}.")
    out = {k: _coerce(v, hints[k], k, where) for k, v in values.items()}
    for k, v in out.items():
        if isinstance(v, tuple) and not v and rules(cls, k):
            raise RaygenError(f"{where}: {k}=[] is empty; give at least one value")
        why = allowed(cls, k, v)
        if why:
            raise RaygenError(f"{where}: {k}={values[k]!r} is not allowed; {k} must be {why}")
    return cls(**out)


def split_config(flat: dict[str, Any]):
    """flat trial config -> (TrainConfig, model class, model Config). Raises RaygenError."""
    from .registry import MODELS

    flat = {k: v for k, v in flat.items() if not k.startswith("_")}
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


# Ray Tune walks into list values of a config as nested search spaces, which breaks the
# pre-set grid points of a sweep (e.g. hidden: [500, 500, 2000] in one variant and
# [512, 256] in another). Lists therefore cross the Tune boundary as tagged JSON strings.
_TUNE_LIST = "json-list:"


def to_tune(config: dict[str, Any]) -> dict[str, Any]:
    return {k: _TUNE_LIST + json.dumps(list(v)) if isinstance(v, (list, tuple)) else v for k, v in config.items()}


def from_tune(config: dict[str, Any]) -> dict[str, Any]:
    return {k: json.loads(v[len(_TUNE_LIST):]) if isinstance(v, str) and v.startswith(_TUNE_LIST) else v
            for k, v in config.items()}


def stack_of(config: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """The member configs of a stacked trial (``_stack``, set by the sweep: ``stacking.py``), else None."""
    raw = (config or {}).get("_stack")
    return json.loads(raw) if isinstance(raw, str) and raw else None
