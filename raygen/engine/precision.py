"""The arithmetic a trial trains in (``train_precision:`` in a sweep or a config), one rule for every model.

- ``fp32``: the default. On a GPU TF32 is switched off for both matmuls and convolutions (cuDNN
  allows it for convolutions by default), so fp32 means fp32 everywhere.
- ``tf32``: fp32 tensors, matmuls and convolutions on TF32 tensor cores (NVIDIA Ampere or later);
  refused elsewhere (a CPU has no TF32).
- ``bf16``: the training steps under ``torch.autocast(bfloat16)`` (matmuls and convolutions in
  bf16, the weights and Adam's moments stay fp32: mixed precision, no loss scaling needed for
  bf16's fp32-sized exponent). On a CPU it needs oneDNN's bf16 kernels (AVX-512 BF16 or AMX).

What it covers: the batch steps of every epoch (``Trial``, stacked trials alike). The losses are
computed in fp32 whatever the precision (``models.losses`` upcasts their inputs: a KL or a
reconstruction summed over 784 pixels in bf16 loses its low digits), and so is everything
outside the steps: pretraining and fitting hooks (GMM fits), evaluation and its metrics. A
comparison must not mix precisions; the report says which ones its rows used.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch

from raygen.core.errors import RaygenError

PRECISIONS = ("fp32", "tf32", "bf16")


def unsupported(precision: str, device: torch.device) -> str | None:
    """Why ``device`` cannot train in ``precision`` (one line with the fix), or None."""
    if precision == "tf32":
        if device.type != "cuda":
            return ("train_precision tf32 needs an NVIDIA GPU (Ampere or later); training here runs on the CPU. "
                    "Fix: train_precision: fp32 or bf16")
        major, _ = torch.cuda.get_device_capability(device)
        if major < 8:
            return (f"train_precision tf32 needs an Ampere or later GPU; {torch.cuda.get_device_name(device)} is "
                    f"compute capability {major}.x. Fix: train_precision: fp32 or bf16")
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            return (f"train_precision bf16 is not supported by {torch.cuda.get_device_name(device)}. "
                    "Fix: train_precision: fp32")
        if device.type == "cpu" and not (torch.backends.mkldnn.is_available()
                                         and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
            return ("train_precision bf16 needs a CPU with bf16 instructions (AVX-512 BF16 or AMX) for oneDNN; "
                    "this one has none. Fix: train_precision: fp32")
    return None


def check(precision: str, device: torch.device) -> None:
    """Raise RaygenError when ``device`` cannot train in ``precision``; else make fp32 the
    arithmetic outside the steps (on a GPU, cuDNN's convolutions would use TF32 by default)."""
    why = unsupported(precision, device)
    if why:
        raise RaygenError(why)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False


@contextmanager
def _tf32(on: bool) -> Iterator[None]:
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


_FP32 = nullcontext()  # reusable: fp32 steps run as everything else does (``check`` set TF32 off)


def steps(precision: str, device: torch.device):
    """The context one training step runs in. One step, not an epoch: autocast keeps its bf16
    copies of the weights until its context ends, and a longer one would train on stale copies."""
    return _FP32 if precision == "fp32" else _mixed(precision, device)


@contextmanager
def _mixed(precision: str, device: torch.device) -> Iterator[None]:
    tf32 = _tf32(precision == "tf32") if device.type == "cuda" else nullcontext()
    cast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    with tf32, cast:
        yield
