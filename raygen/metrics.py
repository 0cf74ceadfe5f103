"""End-of-trial metrics. Each metric family is a function ``(model, data, n) -> dict``;
``evaluate`` runs them all, batched, on the trial's device, and records any metric that
could not be computed in ``metric_errors`` instead of failing the trial.

This module holds reconstruction error; FID / IS and the classifier metrics join
``METRICS`` in their own module (issue 3)."""
from __future__ import annotations

import time
from typing import Callable

import torch

from . import losses

Metric = Callable[..., dict]
METRICS: dict[str, Metric] = {}


def metric(name: str):
    def add(fn: Metric) -> Metric:
        METRICS[name] = fn
        return fn
    return add


@torch.no_grad()
def batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch: int = 500) -> torch.Tensor:
    return torch.cat([fn(x[i:i + batch]) for i in range(0, len(x), batch)])


@torch.no_grad()
def generate(model, n: int, batch: int = 500) -> torch.Tensor:
    return torch.cat([model.sample(min(batch, n - i)) for i in range(0, n, batch)])


@metric("reconstruction")
@torch.no_grad()
def reconstruction(model, data, n: int) -> dict:
    """Pixel MSE (seed 001's 'reconstruction error', 0.092) and per-pixel BCE of held-out
    images passed through encoder and decoder, both on [0, 1]. Point data (no range)
    gives the MSE on the data's own scale."""
    if not model.has_encoder:
        return {}
    x = data.eval.x[:n]
    x_hat = batched(model.reconstruct, x)
    out = {"recon_mse": float(losses.pixel_mse(data.to_unit(x_hat), data.to_unit(x)))}
    if data.data_range is not None:
        out["recon_bce"] = float(losses.pixel_bce(data.to_unit(x_hat), data.to_unit(x)))
    return out


def evaluate(model, data, n: int) -> dict:
    """Run every registered metric; failures become ``metric_errors`` text, not exceptions."""
    model.eval()
    t0 = time.perf_counter()
    out: dict = {}
    errors = []
    for name, fn in METRICS.items():
        try:
            out.update(fn(model, data, n))
        except Exception as exc:  # a metric that cannot run must not lose the trial
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    out["metric_errors"] = "; ".join(errors) if errors else None
    out["eval_samples"] = n
    out["eval_split"] = data.eval_split
    out["train_split"] = data.train_split
    out["eval_time_s"] = time.perf_counter() - t0
    model.train()
    return out
