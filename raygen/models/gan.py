"""GANs: Chaturvedula's DCGAN-style GAN and Qin's MLP GAN.

Both train with the binary cross-entropy of Goodfellow et al. (2014): the discriminator
on real -> 1 / fake -> 0, the generator on the non-saturating -log D(G(z)). Each
``train_step`` does ``n_critic`` discriminator updates, then one generator update
(Chaturvedula, Algorithm 1 alternates them; it gives no ratio, so 1:1 by default).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from raygen.core.registry import MODELS
from raygen.core.settings import setting
from raygen.models import losses
from raygen.models.base import GenerativeModel, ModelConfig, adam, step
from raygen.models.nets import MLP, ConvDecoder, ConvEncoder, Unflatten, numel
from raygen.models.nets.blocks import ACTIVATIONS
from raygen.record.keys import Kind


@dataclass
class GANConfig(ModelConfig):
    latent_dim: int = 100  # Chaturvedula: "a random noise vector with a size of 100"
    lr: float = 2e-4  # Chaturvedula: Adam, learning rate 0.0002
    lr_dis: float = setting(0.0, ge=0, le=10)  # the discriminator's own learning rate (0: lr, as the paper)
    # not in the paper; DCGAN's (Radford et al. 2015, its ref [5]) Adam beta1
    beta1: float = setting(0.5, ge=0, le=0.999)
    n_critic: int = setting(1, ge=1)
    output: str = "tanh"  # Chaturvedula scales pixels to [-1, 1]


@dataclass
class DCGANConfig(GANConfig):
    # Not in the paper; DCGAN puts batch norm in the generator. Off reproduces the text literally.
    batchnorm: bool = True


class GAN(GenerativeModel):
    """A generator and a discriminator trained by alternation; subclasses build the two."""

    Config = GANConfig
    # DCGAN's 2e-4 in the middle; the discriminator's own rate (lr_dis) stays equal to it
    search_space = {"lr": {"loguniform": [5e-5, 1e-3]}, "beta1": {"choice": [0.5, 0.9]}}
    reports = {"d_loss": Kind.LOSS, "g_loss": Kind.LOSS}
    stack_refusal = "alternates two optimizers (discriminator, generator)"

    def __init__(self, cfg: GANConfig, shape, num_classes: int = 10):
        super().__init__(cfg, shape, num_classes)
        self.generator, self.discriminator = self.build_networks()

    def build_networks(self) -> tuple[nn.Module, nn.Module]:
        raise NotImplementedError

    def configure_optimizers(self):
        betas = (self.cfg.beta1, 0.999)
        return {"gen": adam(self.generator.parameters(), lr=self.cfg.lr, betas=betas),
                "dis": adam(self.discriminator.parameters(), lr=self.cfg.lr_dis or self.cfg.lr, betas=betas)}

    def generate(self, n: int) -> torch.Tensor:
        z = torch.randn(n, self.cfg.latent_dim, device=self.device)  # (n, latent)
        return self.output_activation(self.generator(z))  # (n, *shape)

    def train_step(self, x, y, opts):
        b = x.shape[0]
        for _ in range(self.cfg.n_critic):
            fake = self.generate(b).detach()
            d_loss = losses.gan_d_bce(self.discriminator(x), self.discriminator(fake))
            step(opts["dis"], d_loss)
        g_loss = losses.gan_g_bce(self.discriminator(self.generate(b)))
        step(opts["gen"], g_loss)
        return {"loss": (g_loss + d_loss).detach(), "d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        return self.generate(n)


@MODELS.register("gan_dcgan")
class DCGAN(GAN):
    """Chaturvedula (section 3.2.1).

    Generator: z(100) -> dense 7x7x128 -> transposed conv 64 (5x5, stride 2) -> 14x14x64
    -> transposed conv 1 (5x5, stride 2) -> 28x28x1, LeakyReLU(0.2) between layers.
    The paper calls the 14x14x64 stage a second *dense* layer and also gives *two*
    stride-2 transposed convs; both cannot hold for a 28x28 output (7 -> 14 -> 28 needs
    two doublings after one dense layer), so we read 14x14x64 as the first transposed
    conv's output, which matches its "64 and 1 filters". The output activation is not
    given; tanh fits the [-1, 1] pixel scaling.
    Discriminator: convs 64-128-256-512 (5x5, stride 2, 'same'), LeakyReLU(0.2),
    flatten, dense 1 (a logit; the sigmoid is inside the BCE loss).
    """

    Config = DCGANConfig

    def build_networks(self) -> tuple[nn.Module, nn.Module]:
        c = self.cfg
        gen = ConvDecoder(c.latent_dim, self.shape, dense=(), base=128, channels=(64,), kernel=5,
                          act="leaky_relu", batchnorm=c.batchnorm)
        dis = ConvEncoder(self.shape, 1, channels=(64, 128, 256, 512), kernel=5, dense=(), act="leaky_relu")
        return gen, dis


@dataclass
class MLPGANConfig(GANConfig):
    output: str = "sigmoid"  # Qin keeps pixels in [0, 1]
    # Qin gives no latent size ("as many input nodes as input data"); 100 as in Chaturvedula.
    gen_hidden: tuple[int, ...] = setting((128, 256, 512, 1024), ge=1, le=1_000_000)
    dis_hidden: tuple[int, ...] = setting((512, 256), ge=1, le=1_000_000)
    act: str = setting("relu", choices=ACTIVATIONS)  # Qin: ReLU in every hidden layer (leaky_relu: the usual GAN's)
    dis_dropout: float = setting(0.0, ge=0, le=0.99)  # not in Qin (Goodfellow et al. 2014 used dropout in D)
    # Not in Qin's text. Its layer sizes are those of the common PyTorch MLP GAN
    # (generator 128-256-512-1024, discriminator 512-256), which batch-normalises the
    # generator's hidden layers. Measured here (MNIST test split, batch 64, 30 epochs):
    # without it the generator collapsed to a single image (with or without dropout in D);
    # with it, 20 epochs gave varied, recognisable digits.
    gen_batchnorm: bool = True


@MODELS.register("gan_mlp")
class MLPGAN(GAN):
    """Qin (section 2.1): generator z -> 128-256-512-1024 -> 784, discriminator
    784 -> 512-256 -> 1, ReLU hidden units, sigmoid output for the discriminator (inside
    the BCE loss here). The paper gives no optimiser; we keep Chaturvedula's Adam 2e-4."""

    Config = MLPGANConfig

    def build_networks(self):
        c = self.cfg
        gen = nn.Sequential(MLP([c.latent_dim, *c.gen_hidden, numel(self.shape)], act=c.act,
                                batchnorm=c.gen_batchnorm),
                            Unflatten(self.shape))
        dis = MLP([numel(self.shape), *c.dis_hidden, 1], act=c.act, dropout=c.dis_dropout)
        return gen, dis
