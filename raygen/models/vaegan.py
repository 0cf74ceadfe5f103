"""VAE-GAN (Larsen, Sønderby, Larochelle and Winther 2016), one of Ko et al. 2024's baselines.

A VAE whose decoder is also a GAN generator, and whose reconstruction error is measured in
the discriminator's feature space instead of pixel space (section 2.2):

    L_prior = KL(q(z|x) || N(0, I))
    L_llike = -E_q log N(Dis_l(x) | Dis_l(Dec(z)), I)   (eq. 6; 0.5 squared error here)
    L_GAN   = log Dis(x) + log(1 - Dis(Dec(z_p))) + log(1 - Dis(Dec(Enc(x))))   (eq. 7)

Algorithm 1 updates each network on its own loss, all from one forward pass: encoder on
L_prior + L_llike, decoder on gamma * L_llike - L_GAN, discriminator on -L_GAN (binary
cross-entropy, both reconstructions and prior samples as fakes). The encoder gets no GAN
gradient. The decoder's GAN term is the non-saturating -log Dis(Dec(.)) (Goodfellow et al.
2014, section 3) over the B reconstructions and the B prior samples (a sum of the two batch
means, as the released code sums over the 2B fakes of a batch of B); the released AEGAN
reverses the discriminator's gradient instead, i.e. the saturating log(1 - Dis(Dec(.))).

Balancing (not in the paper's text: in Larsen et al.'s released code,
github.com/andersbll/autoencoding_beyond_pixels, ``model/aegan.py``; what is taken from it):

* ``recon_vs_gan`` (w, their ``AEGAN(recon_vs_gan_weight=1e-2)``): the decoder descends
  w * L_llike + (1 - w) * GAN term (their decoder parameters' ``WeightedParameter(p, w,
  -(1 - w))``), so the paper's gamma is w / (1 - w) (1e-2 -> ~0.0101). Their image scripts
  (``aegan.py``'s ``build_model``) use 5e-5 with a conv layer's features.
* ``real_vs_gen`` (r, their ``real_vs_gen_weight=0.5``): the discriminator descends
  r * mean_real(-log Dis) + (1 - r) * mean_fakes(-log(1 - Dis)), the fakes being the B
  reconstructions and B prior samples together (their per-example gradient scales r and
  (1 - r) * B / 2B on the sums).
* ``equilibrium`` and ``margin`` (their ``GradientDescent(margin=0.4, equilibrium=0.68)``;
  their ``aegan.py`` ``train`` passes ``gan_margin=0.35``): with the batch's discriminator
  costs real = mean -log Dis(x) and fake = mean over the 2B fakes of -log(1 - Dis(.)),
  measured before the step, the discriminator is not updated when either is below
  equilibrium - margin (it is winning), the decoder's GAN term is dropped when either is above
  equilibrium + margin (it is losing), and when both would be skipped neither is. Their code
  skips the decoder's whole update in that case; here the decoder keeps its L_llike term
  (the weighting above separates the two, and the reconstruction keeps learning).
  ``d_skipped`` and ``g_skipped`` report the fraction of an epoch's batches that skipped each.

Under Ko et al. 2024's protocol every network is the protocol's fully connected stack: the
discriminator is encoder-shaped (500-500-2000 -> 1 logit) and Dis_l is its last hidden layer
(Larsen et al. take the third conv layer of their conv discriminator). Adam for all three
(Ko et al. 2024), not their RMSProp.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from raygen.core.registry import MODELS
from raygen.core.settings import setting
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
    # Larsen et al.'s released code (see the module docstring); gamma = w / (1 - w).
    recon_vs_gan: float = setting(1e-2, ge=0, le=1)  # w: decoder on w * L_llike + (1 - w) * GAN
    real_vs_gen: float = setting(0.5, gt=0, le=1)  # weight of real vs fake in the discriminator's loss
    equilibrium: float = setting(0.68, gt=0)  # ~ log 2, a discriminator guessing
    margin: float = setting(0.4, ge=0)  # large (e.g. 100) turns the skipping off


@MODELS.register("vae_gan")
class VAEGAN(VAE):
    """Larsen et al. (2016): VAE + GAN with the learned feature-wise reconstruction, balanced as
    in their released code (see module)."""

    Config = VAEGANConfig
    reports = {**VAE.reports, **dict.fromkeys(("g_loss", "d_loss", "d_real", "d_fake", "d_skipped", "g_skipped"),
                                              Kind.LOSS)}
    # the balance between the feature reconstruction and the GAN term, and the equilibrium's margin
    search_space = {**VAE.search_space, "recon_vs_gan": {"loguniform": [1e-4, 0.5]},
                    "margin": {"uniform": [0.2, 0.6]}}
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

    def balance(self, real_cost: float, fake_cost: float) -> tuple[bool, bool]:
        """(update the discriminator, give the decoder its GAN term) for a batch's
        discriminator costs (Larsen et al.'s equilibrium rule, see module)."""
        c = self.cfg
        low, high = c.equilibrium - c.margin, c.equilibrium + c.margin
        dis = not (real_cost < low or fake_cost < low)
        gen = not (real_cost > high or fake_cost > high)
        if not (dis or gen):
            return True, True
        return dis, gen

    def train_step(self, x, y, opts):
        c = self.cfg
        b = x.shape[0]
        z, mu, logvar = self.encode_sample(x)
        x_rec = self.decode(z)  # (B, *shape), data range
        x_p = self.decode(self.prior_sample(b))
        f_x, real = self.discriminator(x)
        f_rec, fake_rec = self.discriminator(x_rec)
        _, fake_p = self.discriminator(x_p)
        fake = torch.cat([fake_rec, fake_p])  # (2B, 1)
        prior = losses.kl_normal(mu, logvar)
        llike = losses.feature_mse(f_x, f_rec)
        real_cost = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))  # mean -log Dis(x)
        fake_cost = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))  # mean -log(1 - Dis)
        d_loss = c.real_vs_gen * real_cost + (1 - c.real_vs_gen) * fake_cost
        g_loss = losses.gan_g_bce(fake_rec) + losses.gan_g_bce(fake_p)
        update_dis, use_gan = self.balance(real_cost.item(), fake_cost.item())
        group_loss = {"enc": prior + llike,
                      "dec": c.recon_vs_gan * llike + ((1 - c.recon_vs_gan) * g_loss if use_gan else 0.0)}
        if update_dis:
            group_loss["dis"] = d_loss
        else:  # no step at all: neither its weights nor Adam's moments move
            for p in self.discriminator.parameters():
                p.grad = None
        groups = self.groups()
        for name, loss in group_loss.items():  # each network on its own loss (Algorithm 1)
            grads = torch.autograd.grad(loss, groups[name], retain_graph=True)
            for p, g in zip(groups[name], grads):
                p.grad = g
        for name in group_loss:
            opts[name].step()
        flag = lambda skipped: torch.tensor(float(skipped), device=x.device)
        return {"loss": (prior + llike + g_loss + d_loss).detach(), "recon_loss": llike.detach(),
                "reg_loss": prior.detach(), "g_loss": g_loss.detach(), "d_loss": d_loss.detach(),
                "d_real": real_cost.detach(), "d_fake": fake_cost.detach(),
                "d_skipped": flag(not update_dis), "g_skipped": flag(not use_gan)}
