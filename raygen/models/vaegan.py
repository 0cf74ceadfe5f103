"""VAE-GAN (Larsen, Sønderby, Larochelle and Winther 2016), one of Ko et al. 2024's baselines.

A VAE whose decoder is also a GAN generator, and whose reconstruction error is measured in
the discriminator's feature space instead of pixel space (section 2.2):

    L_prior = KL(q(z|x) || N(0, I))
    L_llike = -E_q log N(Dis_l(x) | Dis_l(Dec(z)), I)   (eq. 6; 0.5 squared error here)
    L_GAN   = log Dis(x) + log(1 - Dis(Dec(z_p))) + log(1 - Dis(Dec(Enc(x))))   (eq. 7)

Algorithm 1 updates each network on its own loss, all from one forward pass:
encoder on L_prior + L_llike, decoder on gamma * L_llike - L_GAN (we use the non-saturating
-log Dis(.) for the decoder's GAN term, as Larsen et al.'s code does for G), discriminator
on -L_GAN (binary cross-entropy with both reconstructions and prior samples as fakes).

Under Ko et al. 2024's protocol every network is the protocol's fully connected stack: the
discriminator is encoder-shaped (500-500-2000 -> 1 logit) and Dis_l is its last hidden layer
(Larsen et al. take the third conv layer of their conv discriminator). Larsen et al. give no
value for gamma; 1 by default. Adam for all three (Ko et al. 2024), not their RMSProp.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from raygen.core.registry import MODELS
from raygen.models import losses
from raygen.models.base import adam
from raygen.models.nets import build_encoder
from raygen.models.vae_variants import VAE, VAEConfig
from raygen.record.keys import Kind


class FeatureTap(nn.Module):
    """Wraps a discriminator: returns (the input of its last linear layer, i.e. the last hidden
    features Dis_l, flattened; the logits)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        last = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
        last.register_forward_pre_hook(self._keep)
        self._features: torch.Tensor | None = None

    def _keep(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self._features = inputs[0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(x)  # (B, 1)
        features, self._features = self._features, None
        return features, logits


@dataclass
class VAEGANConfig(VAEConfig):
    gamma: float = 1.0  # weight of L_llike in the decoder's loss (Larsen et al., section 2.3)


@MODELS.register("vae_gan")
class VAEGAN(VAE):
    """Larsen et al. (2016): VAE + GAN with the learned feature-wise reconstruction (see module)."""

    Config = VAEGANConfig
    reports = {**VAE.reports, "g_loss": Kind.LOSS, "d_loss": Kind.LOSS}
    stackable = False
    stack_refusal = "alternates three optimizers (encoder, decoder, discriminator)"

    def __init__(self, cfg: VAEGANConfig, shape, num_classes: int = 10):
        super().__init__(cfg, shape, num_classes)
        self.discriminator = FeatureTap(build_encoder(cfg.arch, shape, 1, hidden=cfg.hidden, act=cfg.act))

    def groups(self) -> dict[str, list[nn.Parameter]]:
        return {"enc": list(self.encoder.parameters()), "dec": list(self.decoder.parameters()),
                "dis": list(self.discriminator.parameters())}

    def configure_optimizers(self):
        return {k: adam(ps, lr=self.cfg.lr) for k, ps in self.groups().items()}

    def train_step(self, x, y, opts):
        z, mu, logvar = self.encode_sample(x)
        x_rec = self.decode(z)  # (B, *shape), data range
        x_p = self.decode(self.prior_sample(x.shape[0]))
        f_x, real = self.discriminator(x)
        f_rec, fake_rec = self.discriminator(x_rec)
        _, fake_p = self.discriminator(x_p)
        prior = losses.kl_normal(mu, logvar)
        llike = losses.feature_mse(f_x, f_rec)
        g_loss = losses.gan_g_bce(fake_rec) + losses.gan_g_bce(fake_p)
        d_loss = losses.gan_d_bce(real, fake_rec) + losses.gan_fake_bce(fake_p)
        group_loss = {"enc": prior + llike, "dec": self.cfg.gamma * llike + g_loss, "dis": d_loss}
        groups = self.groups()
        for name, loss in group_loss.items():  # each network on its own loss (Algorithm 1)
            grads = torch.autograd.grad(loss, groups[name], retain_graph=True)
            for p, g in zip(groups[name], grads):
                p.grad = g
        for opt in opts.values():
            opt.step()
        return {"loss": (prior + llike + g_loss + d_loss).detach(), "recon_loss": llike.detach(),
                "reg_loss": prior.detach(), "g_loss": g_loss.detach(), "d_loss": d_loss.detach()}
