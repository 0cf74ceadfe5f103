"""K copies of one fully connected model as one model with a leading member dimension.

``StackedTrial`` trains K trials of one architecture together. ``torch.vmap`` over
``functional_call`` does it for any network but pays per call and per op: on the cosine
experiment's small MLPs a stacked step of five cost 2.9x one alone. Here the K members'
``nn.Linear`` layers become one ``StackedLinear`` each (one ``baddbmm`` over (K, out, in)
weights), and the model's own ``loss`` runs once on (K, B, ...) inputs: as many ops as one
trial, each K times wider.

This needs two things of a model. Its network holds only the modules in ``BATCHABLE``
(``batchable`` says which one does not: conv and batch-norm networks keep vmap). Its loss
code works on any leading dimensions: features on the last axis, the batch just before
them (``losses`` reduce over ``data_dims``, ``chunk(2, dim=-1)``, noise drawn at the input's
shape), so every term comes out with one value per member, and loss weights that differ
between members arrive as (K,) tensors. The contract test over every stackable model
(tests/engine/test_batched.py) holds each model to it.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from raygen.models.nets.blocks import MLP, Unflatten

# Modules whose forward handles a leading member dimension once Linear and Flatten are swapped
_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Identity)
BATCHABLE = (nn.Linear, nn.Flatten, Unflatten, nn.Sequential, MLP, *_ELEMENTWISE)


class StackedLinear(nn.Module):
    """K ``nn.Linear`` layers of one shape: x (K, B, in) -> (K, B, out), one batched product.
    Weights are (K, out, in), so a member's slice is its layer's weight, in (K, in, out) memory
    (``io_layout``)."""

    def __init__(self, weight: nn.Parameter, bias: nn.Parameter | None):
        super().__init__()
        self.weight = weight  # (K, out, in): the stacked parameter itself, trained in place
        self.bias = bias  # (K, out) or None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.transpose(1, 2)  # (K, in, out)
        if self.bias is None:
            return torch.bmm(x, w)
        return torch.baddbmm(self.bias.unsqueeze(1), x, w)


def linear_weights(model: nn.Module) -> set[str]:
    """Names of ``model``'s Linear weights (in ``named_parameters``)."""
    return {f"{name}.weight" for name, mod in model.named_modules() if isinstance(mod, nn.Linear)}


def io_layout(t: torch.Tensor) -> torch.Tensor:
    """(K, out, in) stacked weights (or their Adam moments) as a view on (K, in, out) memory: the
    layout bmm's backward gives their gradient in, which autograd then keeps as it is. In
    (K, out, in) memory every step copied each gradient transposed: a sixth of a Table 3 VAE step."""
    return t.transpose(1, 2).contiguous().transpose(1, 2)


def batchable(model: nn.Module) -> str | None:
    """None when ``model``'s networks (its children that hold parameters) can run as
    ``batched_copy``; else the first module type that cannot."""
    if next(model.parameters(recurse=False), None) is not None:
        return f"{type(model).__name__}'s own parameters"
    for child in model.children():
        if next(child.parameters(), None) is None:
            continue  # no weights, not a network (e.g. the fitted latent sampler's buffers)
        for mod in child.modules():
            if not isinstance(mod, BATCHABLE):
                return type(mod).__name__
    return None


def batched_copy(model: nn.Module, params: dict[str, nn.Parameter]) -> nn.Module:
    """A copy of ``model`` whose Linear layers run the stacked ``params`` ({name: (K, ...)}, the
    names of ``model.named_parameters()``): the returned model's parameters *are* those objects.
    Flatten layers start one axis later (the member axis comes first)."""
    out = copy.deepcopy(model)
    for name, mod in list(out.named_modules()):
        parent, _, attr = name.rpartition(".")
        owner = out.get_submodule(parent) if parent else out
        if isinstance(mod, nn.Linear):
            bias = params.get(f"{name}.bias")
            setattr(owner, attr, StackedLinear(params[f"{name}.weight"], bias))
        elif isinstance(mod, nn.Flatten):
            shift = [d + 1 if d >= 0 else d for d in (mod.start_dim, mod.end_dim)]
            setattr(owner, attr, nn.Flatten(*shift))
    own = dict(out.named_parameters())
    if own.keys() != params.keys() or any(own[n] is not p for n, p in params.items()):
        raise ValueError("batched_copy: the stacked parameters do not match the model's")
    out.member_dims = 1
    return out
