"""Residual convolutional networks of Zemouri 2020 (section 4.2, Figure 6).

``ResNetEncoder``   3 levels of 2 stages [conv 3x3 stride 1 -> residual block -> LeakyReLU],
                    2x2 max-pools between the levels (6 convs, 2 pools), flatten, dense
                    LeakyReLU layers, a linear output (mean and log-variance side by side)
``ResNetDecoder``   dense [BN, LeakyReLU] layers -> reshape -> 7 convs 3x3 stride 1
                    [conv -> BN -> LeakyReLU -> residual block], 2 nearest upsamplings,
                    pre-activation image out
``Discriminator``   3 convs 3x3 stride 1 (LeakyReLU), 2 max-pools, 4 dense LeakyReLU
                    layers, one linear unit
``ResClassifier``   3 dense [BN, LeakyReLU] layers each followed by a residual block,
                    class logits (softmax applied by the losses)

Figure 6 (the widths) is not in the text we have; every width is a config value, and the
defaults below are our choice, kept small enough to train on a CPU. Also the ``resnet``
architecture (``archs.py``), so any VAE can sweep ``arch: resnet``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from raygen.models.nets.blocks import MLP, activation


class ResBlock(nn.Module):
    """x + BN(conv(LeakyReLU(BN(conv(x))))), 3x3 'same' convs. Section 4.2 uses "the same
    residual block as used by [54]" (Hou et al. 2019) without describing it; this is the
    standard ResNet basic block (He et al. 2016), which is what that line of work uses."""

    def __init__(self, ch: int, act: str = "leaky_relu"):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.BatchNorm2d(ch), activation(act),
                                  nn.Conv2d(ch, ch, 3, padding=1), nn.BatchNorm2d(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResDense(nn.Module):
    """x + BN(Linear(LeakyReLU(BN(Linear(x))))): the classifier's residual block (the dense
    analogue of ``ResBlock``; section 4.2 does not describe it either)."""

    def __init__(self, width: int, act: str = "leaky_relu"):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), activation(act),
                                  nn.Linear(width, width), nn.BatchNorm1d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class EncoderStage(nn.Sequential):
    """Encoder layer: conv 3x3 stride 1 -> residual block -> LeakyReLU (section 4.2)."""

    def __init__(self, c_in: int, c_out: int, act: str):
        super().__init__(nn.Conv2d(c_in, c_out, 3, padding=1), ResBlock(c_out, act), activation(act))


class DecoderStage(nn.Sequential):
    """Decoder layer: conv 3x3 stride 1 -> BN -> LeakyReLU -> residual block (section 4.2)."""

    def __init__(self, c_in: int, c_out: int, act: str):
        super().__init__(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), activation(act),
                         ResBlock(c_out, act))


def pooled_levels(shape: Sequence[int], channels: Sequence[int], level: Callable[[int, int], list[nn.Module]]
                  ) -> tuple[list[nn.Module], tuple[int, int, int]]:
    """One ``level(c_in, c_out)`` per width in ``channels``, a 2x2 max-pool before every level
    but the first; returns the layers and the output shape (C, H, W)."""
    c, h, w = shape
    layers: list[nn.Module] = []
    for i, ch in enumerate(channels):
        if i:
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        layers += level(c, ch)
        c = ch
    return layers, (c, h, w)


class ResNetEncoder(nn.Module):
    """(B, C, H, W) -> (B, out_dim). ``channels`` gives each level's width (two stages per
    level, a 2x2 max-pool before every level but the first); ``dense`` the LeakyReLU
    layers after the flatten; the output layer is linear."""

    def __init__(self, shape: Sequence[int], out_dim: int, channels: Sequence[int] = (16, 32, 64),
                 dense: Sequence[int] = (512, 256, 128), act: str = "leaky_relu", batchnorm: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        layers, (c, h, w) = pooled_levels(shape, channels,
                                          lambda cin, ch: [EncoderStage(cin, ch, act), EncoderStage(ch, ch, act)])
        self.layers = nn.ModuleList(layers)
        self.head = MLP([c * h * w, *dense, out_dim], act=act, batchnorm=batchnorm, dropout=dropout)

    def forward_features(self, x: torch.Tensor, n: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The output and the outputs of the first ``n`` encoder layers (conv stages)."""
        feats = []
        for layer in self.layers:
            x = layer(x)
            if isinstance(layer, EncoderStage) and len(feats) < n:
                feats.append(x)  # (B, ch, h, w)
        return self.head(x), feats

    def features(self, x: torch.Tensor, n: int) -> list[torch.Tensor]:
        """Only the first ``n`` layers' outputs (stops early: cheaper than a full pass)."""
        feats = []
        for layer in self.layers:
            if len(feats) == n:
                break
            x = layer(x)
            if isinstance(layer, EncoderStage):
                feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x, 0)[0]


class ResNetDecoder(nn.Module):
    """(B, latent) -> dense layers (each Linear -> BN -> LeakyReLU, the last one sized to
    reshape into (channels[0], H/4, W/4)) -> per level two ``DecoderStage`` with a nearest
    2x upsampling between levels -> a last conv 3x3 to C channels: 2 * levels + 1 convs
    (7 for 3 levels, as in section 4.2). Pre-activation output, cropped to H x W."""

    def __init__(self, latent: int, shape: Sequence[int], dense: Sequence[int] = (128, 256),
                 channels: Sequence[int] = (64, 32, 16), act: str = "leaky_relu"):
        super().__init__()
        c_out, self.h, self.w = shape
        k = len(channels) - 1  # upsamplings
        self.top = (channels[0], -(-self.h // 2**k), -(-self.w // 2**k))  # (C, ceil(H/4), ceil(W/4))
        sizes = [latent, *dense, channels[0] * self.top[1] * self.top[2]]
        fc: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            fc += [nn.Linear(a, b), nn.BatchNorm1d(b), activation(act)]
        self.dense = nn.Sequential(*fc)
        convs: list[nn.Module] = []
        c = channels[0]
        for i, ch in enumerate(channels):
            if i:
                convs.append(nn.Upsample(scale_factor=2, mode="nearest"))
            convs += [DecoderStage(c, ch, act), DecoderStage(ch, ch, act)]
            c = ch
        convs.append(nn.Conv2d(c, c_out, 3, padding=1))
        self.convs = nn.Sequential(*convs)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.dense(z).view(-1, *self.top)  # (B, C, H/4, W/4)
        return self.convs(h)[:, :, : self.h, : self.w]


class Discriminator(nn.Module):
    """(B, C, H, W) -> (B, 1) linear score: conv, pool, conv, pool, conv (3x3 stride 1,
    LeakyReLU), flatten, ``dense`` LeakyReLU layers (4 in section 4.2), one linear unit."""

    def __init__(self, shape: Sequence[int], channels: Sequence[int] = (16, 32, 32),
                 dense: Sequence[int] = (256, 128, 64, 32), act: str = "leaky_relu"):
        super().__init__()
        layers, (c, h, w) = pooled_levels(shape, channels,
                                          lambda cin, ch: [nn.Conv2d(cin, ch, 3, padding=1), activation(act)])
        self.convs = nn.Sequential(*layers)
        self.head = MLP([c * h * w, *dense, 1], act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(x))


class ResClassifier(nn.Module):
    """(B, latent) -> (B, classes) logits: 3 x [Linear -> BN -> LeakyReLU -> ResDense]."""

    def __init__(self, latent: int, num_classes: int, width: int = 128, depth: int = 3,
                 act: str = "leaky_relu"):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(latent if i == 0 else width, width), nn.BatchNorm1d(width), activation(act),
                       ResDense(width, act)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(width, num_classes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(z))
