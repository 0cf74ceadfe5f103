"""VAEs: seed 001's conv VAE and seed 003's MLP VAE (Kingma & Welling 2014).

loss = reconstruction (-log p(x|z), BCE by default) + beta * KL(q(z|x) || N(0, I)).
Seed 001 writes that the loss is "the product of the reconstruction loss and the KL
divergence"; a product is not an ELBO (it would vanish as either term does), so we take
the standard reading, the sum. Variants (issue 5: BetaVAE, InfoVAE, WAE, ...) subclass
``VAE`` and override ``regularizer`` or the prior.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import losses
from ..errors import RaygenError
from ..nets import build_decoder, build_encoder
from ..registry import MODELS
from .base import AutoEncoderModel, ModelConfig


@dataclass
class VAEConfig(ModelConfig):
    latent_dim: int = 10  # seed 001: "a latent vector of size 10"
    lr: float = 2e-4  # seed 001: Adam, learning rate 0.0002
    arch: str = "conv"  # mlp | conv (nets.ENCODERS): a sweep dimension
    hidden: tuple[int, ...] = (512, 256)  # encoder dense sizes; the decoder mirrors them
    act: str = "leaky_relu"  # seed 001: LeakyReLU(0.2) throughout
    recon: str = "bce"  # bce (Bernoulli) | mse (Gaussian, sum over dims)
    beta: float = 1.0  # weight of the KL term (1: the plain VAE)


class VAE(AutoEncoderModel):
    Config = VAEConfig

    def __init__(self, cfg: VAEConfig, shape, num_classes: int = 10):
        super().__init__(cfg, shape, num_classes)
        if cfg.recon not in ("bce", "mse"):
            raise RaygenError(f"recon must be 'bce' or 'mse', got {cfg.recon!r}")
        if cfg.recon == "bce" and cfg.output != "sigmoid":
            raise RaygenError(f"recon 'bce' needs output 'sigmoid' (got {cfg.output!r}); use recon: mse")
        self.encoder = build_encoder(cfg.arch, shape, 2 * cfg.latent_dim, hidden=cfg.hidden, act=cfg.act)
        self.decoder = build_decoder(cfg.arch, cfg.latent_dim, shape, hidden=tuple(reversed(cfg.hidden)),
                                     act=cfg.act)

    def encode_dist(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)  # (B, latent) each
        return mu, logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_dist(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.output_activation(self.decoder(z))

    def recon_loss(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``h``: the decoder's pre-activation output."""
        if self.cfg.recon == "bce":
            return losses.bce_recon(h, x)
        return losses.mse_recon(self.output_activation(h), x)

    def regularizer(self, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return self.cfg.beta * losses.kl_normal(mu, logvar)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode_dist(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # reparameterisation
        rec = self.recon_loss(self.decoder(z), x)
        reg = self.regularizer(z, mu, logvar)
        return {"loss": rec + reg, "recon_loss": rec, "reg_loss": reg}

    def train_step(self, x, y, opts):
        out = self.loss(x, y)
        opts["opt"].zero_grad(set_to_none=True)
        out["loss"].backward()
        opts["opt"].step()
        return {k: v.detach() for k, v in out.items()}

    def prior_sample(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.latent_dim, device=self.device)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        return self.decode(self.prior_sample(n))


@MODELS.register("vae_conv")
class ConvVAE(VAE):
    """Seed 001 (section 3.2.2): encoder convs 32, 64 (3x3, stride 2, 'same') -> dense 512,
    256 -> mean and log-variance of a 10-d latent; decoder dense 256, 512 -> (7x7x64, the
    mirror of the encoder's flatten, which the paper leaves implicit) -> transposed convs
    64 and 1 (3x3, stride 2) -> sigmoid. LeakyReLU(0.2) throughout."""


@dataclass
class MLPVAEConfig(VAEConfig):
    latent_dim: int = 2  # seed 003: two latent nodes
    arch: str = "mlp"
    hidden: tuple[int, ...] = (512, 256)  # seed 003: 784-512-256, mirrored decoder
    act: str = "relu"  # seed 003 uses ReLU for its hidden layers
    lr: float = 1e-3  # seed 003 gives no optimiser settings; Adam 1e-3 (Kingma & Welling's scale)


@MODELS.register("vae_mlp")
class MLPVAE(VAE):
    """Seed 003 (section 2.2): 784 -> 512 -> 256 -> (mean, log-variance) of 2 -> 256 -> 512
    -> 784, sigmoid output."""

    Config = MLPVAEConfig
