"""Adam as every model trains with it: PyTorch's fused kernel, without torch.optim's compiler hooks.

``torch.optim.Adam(fused=True)`` wraps ``__init__`` (through ``add_param_group``), ``step``,
``zero_grad`` and the state-dict methods in hooks for ``torch.compile`` whose first call
imports ``torch._dynamo``: 2-5 s of every Ray worker's first trial on this project's CPU
(``python -m benchmarks.startup``), for a compiler raygen never uses. ``FusedAdam`` is that
optimizer with the same kernel (``torch._fused_adam_``), the same state (``step``,
``exp_avg``, ``exp_avg_sq``; a checkpoint of either loads into the other) and the same
updates bit for bit (tests/models/test_optim.py), reaching the wrapped methods' own bodies
(``__wrapped__``) instead of their hooks. Its ``step`` and ``zero_grad`` also skip the
profiler's record_function and the global step hooks raygen never registers: on the cosine
experiment's small networks they were 11-18 % of a step.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.optim import Optimizer


def _memory_order(p: torch.Tensor, *more: torch.Tensor) -> list[torch.Tensor]:
    """``p`` and ``more`` (tensors of ``p``'s strides) with their dimensions permuted into memory
    order: contiguous when ``p`` is dense in another order (a stacked model's (K, out, in)
    weights kept in (K, in, out) memory, ``raygen.engine.batched``), on which the fused kernel
    ran at half speed or less. Adam is elementwise, so any common order gives the same update."""
    order = sorted(range(p.dim()), key=lambda d: -p.stride(d))
    return [t.permute(order) for t in (p, *more)]


def _plain(method):
    """An Optimizer method without its ``torch._disable_dynamo`` hook (its own body)."""
    return getattr(method, "__wrapped__", method)


class FusedAdam(torch.optim.Adam):
    """Adam (no amsgrad, no weight decay's decoupled form) stepped by PyTorch's fused kernel."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=True)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _plain(Optimizer.add_param_group)(self, param_group)

    def _patch_step_function(self) -> None:
        self._zero_grad_profile_name = f"Optimizer.zero_grad#{type(self).__name__}.zero_grad"  # step stays unwrapped

    def zero_grad(self, set_to_none: bool = True) -> None:
        if not set_to_none:
            _plain(Optimizer.zero_grad)(self, set_to_none)
            return
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def state_dict(self):
        return _plain(Optimizer.state_dict)(self)

    def load_state_dict(self, state_dict) -> None:
        _plain(Optimizer.load_state_dict)(self, state_dict)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, avgs, sqs, steps = [], [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:  # as torch.optim.Adam's fused path: the step count on the parameter's device
                    state["step"] = torch.tensor(0.0, dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                four = (p, p.grad, state["exp_avg"], state["exp_avg_sq"])
                if not p.is_contiguous():
                    four = _memory_order(*four)
                params.append(four[0])
                grads.append(four[1])
                avgs.append(four[2])
                sqs.append(four[3])
                steps.append(state["step"])
            if not params:
                continue
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            torch._fused_adam_(params, grads, avgs, sqs, [], steps, amsgrad=False, lr=group["lr"], beta1=beta1,
                               beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
                               grad_scale=None, found_inf=None)
        return loss
