"""Dense and convolutional building blocks shared by every model family.

``MLP``              fully connected stack (Qin; Ko et al. 2024)
``ConvEncoder``      stride-2 'same' convs -> flatten -> dense stack -> out (Chaturvedula's VAE
                     encoder and DCGAN discriminator are both this shape)
``ConvDecoder``      dense stack -> reshape -> stride-2 'same' transposed convs (Chaturvedula's
                     VAE decoder and DCGAN generator)
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "linear")


def activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.2), "tanh": nn.Tanh(),
            "sigmoid": nn.Sigmoid(), "linear": nn.Identity()}[name]


def numel(shape: Sequence[int]) -> int:
    return int(math.prod(shape))


class MLP(nn.Sequential):
    """Linear layers of ``sizes[0] -> ... -> sizes[-1]``; ``act`` (then optional dropout)
    between them, ``out_act`` (default none) after the last. Inputs of any shape are flattened."""

    def __init__(self, sizes: Sequence[int], act: str = "relu", out_act: str = "linear",
                 batchnorm: bool = False, dropout: float = 0.0):
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            last = i == len(sizes) - 2
            if not last:
                if batchnorm:
                    layers.append(nn.BatchNorm1d(b))
                layers.append(activation(act))
                if dropout:
                    layers.append(nn.Dropout(dropout))
        if out_act != "linear":
            layers.append(activation(out_act))
        super().__init__(*layers)


def _same(kernel: int) -> int:
    return kernel // 2


class ConvEncoder(nn.Module):
    """(B, C, H, W) -> stride-2 convs (``channels``) -> flatten -> ``dense`` -> (B, out_dim)."""

    def __init__(self, shape: Sequence[int], out_dim: int, channels: Sequence[int] = (32, 64),
                 kernel: int = 3, dense: Sequence[int] = (512, 256), act: str = "leaky_relu",
                 batchnorm: bool = False, dropout: float = 0.0):
        super().__init__()
        c, h, w = shape
        convs: list[nn.Module] = []
        for ch in channels:
            convs += [nn.Conv2d(c, ch, kernel, stride=2, padding=_same(kernel)),
                      *([nn.BatchNorm2d(ch)] if batchnorm else []), activation(act)]
            c, h, w = ch, (h + 1) // 2, (w + 1) // 2  # 'same' padding, stride 2: ceil(n / 2)
        self.convs = nn.Sequential(*convs)
        # no activation after out_dim
        self.head = MLP([c * h * w, *dense, out_dim], act=act, batchnorm=batchnorm, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(x))


class ConvDecoder(nn.Module):
    """(B, in_dim) -> ``dense`` -> (B, base, h0, w0) -> stride-2 transposed convs
    (``channels``, the last producing the image's C) -> (B, C, H, W) pre-activation.

    h0 = ceil(H / 2**len(channels)); the output is cropped to H x W when H is not a
    multiple of that power of two.
    """

    def __init__(self, in_dim: int, shape: Sequence[int], dense: Sequence[int] = (256, 512),
                 base: int = 64, channels: Sequence[int] = (64,), kernel: int = 3,
                 act: str = "leaky_relu", batchnorm: bool = False):
        super().__init__()
        c_out, self.h, self.w = shape
        k = len(channels) + 1
        self.h0, self.w0 = -(-self.h // 2**k), -(-self.w // 2**k)
        self.base = base
        self.dense = MLP([in_dim, *dense, base * self.h0 * self.w0], act=act, batchnorm=batchnorm)
        bn = [nn.BatchNorm1d(base * self.h0 * self.w0)] if batchnorm else []
        self.dense_act = nn.Sequential(*bn, activation(act))
        layers: list[nn.Module] = []
        c = base
        for ch in (*channels, c_out):
            layers.append(nn.ConvTranspose2d(c, ch, kernel, stride=2, padding=_same(kernel),
                                             output_padding=1))  # doubles H and W exactly
            if ch != c_out:
                if batchnorm:
                    layers.append(nn.BatchNorm2d(ch))
                layers.append(activation(act))
            c = ch
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        hid = self.dense_act(self.dense(z)).view(-1, self.base, self.h0, self.w0)
        return self.deconvs(hid)[:, :, : self.h, : self.w]


class Unflatten(nn.Module):
    def __init__(self, shape: Sequence[int]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(*x.shape[:-1], *self.shape)  # (..., numel) -> (..., *shape)
