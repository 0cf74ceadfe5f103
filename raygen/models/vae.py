"""VAEs: Chaturvedula's conv VAE and Qin's MLP VAE (Kingma & Welling 2014).

loss = reconstruction (-log p(x|z), BCE by default) + beta * KL(q(z|x) || N(0, I)).
Chaturvedula writes that the loss is "the product of the reconstruction loss and the KL
divergence"; a product is not an ELBO (it would vanish as either term does), so we take
the standard reading, the sum. The Ko et al. 2024 baselines (BetaVAE, InfoVAE, WAE, RAE-L2, the
mixture-prior VAEs, VAE-GAN, GAE) subclass ``BaseVAE`` and override ``regularizer``, the prior
or the training step (``vae_variants.py``, ``mixture_vae.py``, ``vaegan.py``, ``gae.py``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from raygen.core.errors import RaygenError
from raygen.core.registry import MODELS
from raygen.core.settings import setting
from raygen.models import losses
from raygen.models.base import AutoEncoderConfig, AutoEncoderModel, step
from raygen.models.figures import points_figure
from raygen.models.nets import ARCHS, build_decoder, build_encoder, numel
from raygen.models.nets.blocks import ACTIVATIONS
from raygen.record.keys import Kind


@dataclass
class BaseVAEConfig(AutoEncoderConfig):
    latent_dim: int = 10  # Chaturvedula: "a latent vector of size 10"
    lr: float = 2e-4  # Chaturvedula: Adam, learning rate 0.0002
    arch: str = setting("conv", choices=tuple(ARCHS.names()))  # a sweep dimension
    hidden: tuple[int, ...] = setting((512, 256), ge=1, le=1_000_000)  # encoder dense sizes; the decoder mirrors them
    act: str = setting("leaky_relu", choices=ACTIVATIONS)  # Chaturvedula: LeakyReLU(0.2) throughout
    recon: str = setting("bce", choices=("bce", "mse"))  # Bernoulli | Gaussian
    # sum: over data dimensions (the per-example ELBO) | mean: over dimensions too (PyTorch's default
    # reduction; Ko et al. 2024 section 4.1's numbers imply it, see sweeps/gae_cosine.yaml)
    recon_reduction: str = setting("sum", choices=("sum", "mean"))
    beta: float = setting(1.0, ge=0)  # weight of the KL term (1: the plain VAE)


# reconstruction name -> -log p(x|z) summed over data dimensions, from the decoder's pre-activation h
RECON = {
    "bce": lambda model, h, x: losses.bce_recon(h, x, len(model.shape)),
    "mse": lambda model, h, x: losses.mse_recon(model.output_activation(h), x, len(model.shape)),
}
REDUCTIONS = ("sum", "mean")


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I) (Kingma & Welling 2014, section 2.4)."""
    return mu + (torch.randn_like(mu) if eps is None else eps) * (0.5 * logvar).exp()


class BaseVAE(AutoEncoderModel):
    Config = BaseVAEConfig
    reports = {"recon_loss": Kind.LOSS, "reg_loss": Kind.LOSS}
    stochastic: ClassVar[bool] = True  # Gaussian q(z|x) (mean, log-variance); False: deterministic codes
    stackable = True  # one Adam over ``loss``; its noise comes from ``noise``
    stack_weights = ("beta",)
    # Set on an instance by raygen.engine.stacking while it vectorises training: (shape, like) -> this
    # member's noise; None (the class default): torch's RNG.
    noise_source: Callable | None = None

    def __init__(self, cfg: BaseVAEConfig, shape, num_classes: int = 10):
        super().__init__(cfg, shape, num_classes)
        if cfg.recon not in RECON:
            raise RaygenError(f"recon must be one of {', '.join(RECON)}, got {cfg.recon!r}")
        if cfg.recon_reduction not in REDUCTIONS:
            raise RaygenError(f"recon_reduction must be one of {', '.join(REDUCTIONS)}, got {cfg.recon_reduction!r}")
        if cfg.recon == "bce" and cfg.output != "sigmoid":
            raise RaygenError(f"recon 'bce' needs output 'sigmoid' (got {cfg.output!r}); use recon: mse")
        self.encoder = build_encoder(cfg.arch, shape, self.encoder_outputs(), hidden=cfg.hidden, act=cfg.act,
                                     **self.net_options())
        self.decoder = build_decoder(cfg.arch, cfg.latent_dim, shape, hidden=tuple(reversed(cfg.hidden)),
                                     act=cfg.act, **self.net_options())

    def net_options(self) -> dict:
        """Extra keywords for the encoder's and decoder's builders (e.g. ``batchnorm``)."""
        return {}

    def encoder_outputs(self) -> int:
        return (2 if self.stochastic else 1) * self.cfg.latent_dim

    def encode_dist(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mean, log-variance) of q(z|x), each (B, latent); log-variance None if deterministic."""
        h = self.encoder(x)
        if not self.stochastic:
            return h, None
        mu, logvar = h.chunk(2, dim=-1)  # (B, latent) each
        return mu, logvar

    def encode_sample(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(z, mu, logvar): z drawn by reparameterisation (z = mu for a deterministic encoder)."""
        mu, logvar = self.encode_dist(x)
        if logvar is None:
            return mu, mu, None
        return reparameterize(mu, logvar, self.noise(mu.shape, mu)), mu, logvar

    def noise(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """N(0, I) draws of ``shape`` for the loss, from torch's RNG (as ``torch.randn_like`` would
        draw them); stacked training substitutes each member's own draws (``noise_source``)."""
        if self.noise_source is not None:
            return self.noise_source(shape, like)
        return torch.randn(shape, dtype=like.dtype, device=like.device)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_dist(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.output_activation(self.decoder(z))

    def recon_loss(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``h``: the decoder's pre-activation output."""
        rec = RECON[self.cfg.recon](self, h, x)
        return rec / numel(self.shape) if self.cfg.recon_reduction == "mean" else rec

    def regularizer(self, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor | None) -> torch.Tensor | None:
        """The latent term of the loss (None: there is none)."""
        return self.cfg.beta * losses.kl_normal(mu, logvar)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        z, mu, logvar = self.encode_sample(x)
        rec = self.recon_loss(self.decoder(z), x)
        reg = self.regularizer(z, mu, logvar)
        if reg is None:  # declare ``reports`` without reg_loss
            return {"loss": rec, "recon_loss": rec}
        return {"loss": rec + reg, "recon_loss": rec, "reg_loss": reg}

    def train_step(self, x, y, opts):
        out = self.loss(x, y)
        step(opts["opt"], out["loss"])
        out = {k: v.detach() for k, v in out.items()}
        self.observe_step(out)
        return out

    def prior_sample(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.latent_dim, device=self.device)

    @torch.no_grad()
    def artifacts(self, data, out_dir: Path) -> dict[str, str]:
        """2-D point data (the cosine curve): Ko et al. 2024's Figure 4 for this trial, the data with
        its reconstructions and 10,000 generated points."""
        if self.shape != (2,):
            return {}
        x = data.train.x
        name = f"{data.name}.png"
        points_figure(x, self.reconstruct(x), self.sample(10_000), out_dir / name,
                      title=f"{self.registry_name} (sampler: {self.cfg.sampler})")
        return {f"{data.name}_png": name}


@MODELS.register("vae_conv")
class ConvVAE(BaseVAE):
    """Chaturvedula (section 3.2.2): encoder convs 32, 64 (3x3, stride 2, 'same') -> dense 512,
    256 -> mean and log-variance of a 10-d latent; decoder dense 256, 512 -> (7x7x64, the
    mirror of the encoder's flatten, which the paper leaves implicit) -> transposed convs
    64 and 1 (3x3, stride 2) -> sigmoid. LeakyReLU(0.2) throughout."""


@dataclass
class MLPVAEConfig(BaseVAEConfig):
    latent_dim: int = 2  # Qin: two latent nodes
    arch: str = "mlp"
    hidden: tuple[int, ...] = (512, 256)  # Qin: 784-512-256, mirrored decoder
    act: str = "relu"  # Qin uses ReLU for its hidden layers
    lr: float = 1e-3  # Qin gives no optimiser settings; Adam 1e-3 (Kingma & Welling's scale)


@MODELS.register("vae_mlp")
class MLPVAE(BaseVAE):
    """Qin (section 2.2): 784 -> 512 -> 256 -> (mean, log-variance) of 2 -> 256 -> 512
    -> 784, sigmoid output."""

    Config = MLPVAEConfig
