"""Loss terms as pure functions. Reductions: sum over data dimensions, mean over the batch
(the per-example ELBO convention), unless a docstring says otherwise."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def bce_recon(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) for Bernoulli pixels; ``logits`` are pre-sigmoid, ``x`` in [0, 1]."""
    return F.binary_cross_entropy_with_logits(_flat(logits), _flat(x), reduction="none").sum(1).mean()


def mse_recon(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared error summed over dimensions (Gaussian -log p(x|z) up to scale and constant)."""
    return (_flat(x_hat) - _flat(x)).pow(2).sum(1).mean()


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)), summed over latent dims, mean over batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()


def gan_d_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator binary cross-entropy: real -> 1, fake -> 0 (Goodfellow et al. 2014)."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def gan_g_bce(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss -log D(G(z)) (Goodfellow et al. 2014, section 3)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def pixel_mse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel (both in [0, 1]): the 'reconstruction error' seed 001
    reports (0.092)."""
    return (x_hat - x).pow(2).mean()


def pixel_bce(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy per pixel of a reconstruction in [0, 1] against x in [0, 1]."""
    return F.binary_cross_entropy(x_hat.clamp(1e-6, 1 - 1e-6), x)


# --- seed 002 (Zemouri 2020): semi-supervised adversarial VAE -------------------------


def masked_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Categorical cross-entropy (eq. 7) averaged over the labelled items of the batch;
    labels < 0 mark unlabelled items, which add nothing. 0 when none is labelled."""
    labelled = (y >= 0).float()
    ce = F.cross_entropy(logits, y.clamp(min=0), reduction="none")
    return (ce * labelled).sum() / labelled.sum().clamp(min=1.0)


def least_squares(pred: torch.Tensor, target: float) -> torch.Tensor:
    """E[(G - Dis(x))^2] against a constant label (Algorithm 2: +1 real, -1 generated)."""
    return (pred - target).pow(2).mean()


def paired_squares(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """E[||a - b||^2]: squared distance summed over features, mean over the batch
    (eq. 10's L_adv on discriminator scores, eq. 11's L_latent on class probabilities)."""
    return (_flat(a) - _flat(b)).pow(2).sum(1).mean()


def feature_consistency(feats: list[torch.Tensor], feats_hat: list[torch.Tensor],
                        alpha: tuple[float, ...]) -> torch.Tensor:
    """Deep-feature reconstruction loss (eq. 9): sum_i alpha_i E[(F_i - F^_i)^2].

    The paper writes E[||F_i - F^_i||^2] without saying what the expectation runs over;
    we average over every feature element (Keras' ``mse``, the framework of the paper's
    era). Summing over the ~25k elements of a 28x28x32 map instead would make L_rec
    thousands of times larger, and then no beta in the paper's range (<= 0.5) could ever
    let the adversarial term dominate, which section 4.4 reports at beta = 0.1."""
    return sum(a * (f - g).pow(2).mean() for a, f, g in zip(alpha, feats, feats_hat))
