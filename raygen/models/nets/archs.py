"""Architectures by name (``arch: mlp | conv | resnet``), so a model's network family is a
sweep dimension: each pairs an encoder builder with its mirrored decoder."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from raygen.core.errors import RaygenError
from raygen.core.registry import Registry
from raygen.models.nets.blocks import MLP, ConvDecoder, ConvEncoder, Unflatten, numel
from raygen.models.nets.resnet import ResNetDecoder, ResNetEncoder


@dataclass(frozen=True)
class Arch:
    encoder: Callable[..., nn.Module]  # (shape, out_dim, hidden, act) -> (B, out_dim)
    decoder: Callable[..., nn.Module]  # (latent, shape, hidden, act) -> pre-activation (B, *shape)
    images_only: bool = True


ARCHS: Registry[Arch] = Registry("architecture")

# Every builder also takes ``batchnorm`` (after each hidden layer) and, for encoders, ``dropout``
# (after each hidden dense activation): VAE-GAN's networks use them (Larsen et al.'s released nets).
ARCHS.register("mlp")(Arch(
    encoder=lambda shape, out_dim, hidden=(512, 256), act="relu", batchnorm=False, dropout=0.0: MLP(
        [numel(shape), *hidden, out_dim], act=act, batchnorm=batchnorm, dropout=dropout),
    decoder=lambda latent, shape, hidden=(256, 512), act="relu", batchnorm=False: nn.Sequential(
        MLP([latent, *hidden, numel(shape)], act=act, batchnorm=batchnorm), Unflatten(shape)),
    images_only=False))
# The conv VAE of Chaturvedula: stride-2 convs 32, 64 and their mirror.
ARCHS.register("conv")(Arch(
    encoder=lambda shape, out_dim, hidden=(512, 256), act="leaky_relu", batchnorm=False, dropout=0.0: ConvEncoder(
        shape, out_dim, channels=(32, 64), kernel=3, dense=hidden, act=act, batchnorm=batchnorm, dropout=dropout),
    decoder=lambda latent, shape, hidden=(256, 512), act="leaky_relu", batchnorm=False: ConvDecoder(
        latent, shape, dense=hidden, base=64, channels=(64,), kernel=3, act=act, batchnorm=batchnorm)))
# Zemouri 2020's residual networks, for any VAE (batch-normalised throughout already).
ARCHS.register("resnet")(Arch(
    encoder=lambda shape, out_dim, hidden=(512, 256), act="leaky_relu", batchnorm=False, dropout=0.0: ResNetEncoder(
        shape, out_dim, channels=(16, 32, 64), dense=hidden, act=act, batchnorm=batchnorm, dropout=dropout),
    decoder=lambda latent, shape, hidden=(256, 512), act="leaky_relu", batchnorm=True: ResNetDecoder(
        latent, shape, dense=hidden, channels=(64, 32, 16), act=act)))

def arch(name: str, shape) -> Arch:
    found = ARCHS.get(name)
    if found.images_only and len(shape) != 3:
        raise RaygenError(f"arch {name!r} needs image data (C, H, W); this dataset's items have "
                          f"shape {tuple(shape)}. Use arch: mlp.")
    return found


def build_encoder(name: str, shape, out_dim: int, **kw) -> nn.Module:
    return arch(name, shape).encoder(tuple(shape), out_dim, **kw)


def build_decoder(name: str, latent: int, shape, **kw) -> nn.Module:
    """Returns pre-activation outputs shaped like the data."""
    return arch(name, shape).decoder(latent, tuple(shape), **kw)
