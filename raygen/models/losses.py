"""Loss terms as pure functions. Reductions: sum over data dimensions, mean over the batch
(the per-example ELBO convention), unless a docstring says otherwise. The terms a stackable
model uses take any leading dimensions before the batch (features last, the batch just
before them) and give one value per leading index: a natively stacked model
(``raygen.engine.batched``) computes K members' losses in one call."""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

_HALF = (torch.bfloat16, torch.float16)


def _up(a):
    if isinstance(a, torch.Tensor):
        return a.float() if a.dtype in _HALF else a
    if isinstance(a, (list, tuple)):
        return type(a)(_up(t) for t in a)
    return a


def fp32(fn):
    """The loss in fp32 whatever precision the step trains in (``engine.precision``): its bf16
    inputs upcast, autocast off inside (a sum over 784 pixels in bf16 keeps 3 digits)."""
    @functools.wraps(fn)
    def loss(*args, **kwargs):
        if not (torch.is_autocast_enabled("cpu") or torch.is_autocast_enabled("cuda")):
            return fn(*args, **kwargs)
        with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
            return fn(*[_up(a) for a in args], **{k: _up(v) for k, v in kwargs.items()})
    return loss


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def _items(t: torch.Tensor, data_dims: int) -> torch.Tensor:
    """(..., B, *data) -> (..., B, prod(data)): the last ``data_dims`` axes are one item."""
    return t.flatten(-data_dims) if data_dims > 1 else t


@fp32
def bce_recon(logits: torch.Tensor, x: torch.Tensor, data_dims: int = 1) -> torch.Tensor:
    """-log p(x|z) for Bernoulli pixels; ``logits`` are pre-sigmoid, ``x`` in [0, 1]; an item is
    the last ``data_dims`` axes."""
    bce = F.binary_cross_entropy_with_logits(_items(logits, data_dims), _items(x, data_dims), reduction="none")
    return bce.sum(-1).mean(-1)


@fp32
def mse_recon(x_hat: torch.Tensor, x: torch.Tensor, data_dims: int = 1) -> torch.Tensor:
    """Squared error summed over an item's dimensions (Gaussian -log p(x|z) up to scale and constant)."""
    return (_items(x_hat, data_dims) - _items(x, data_dims)).pow(2).sum(-1).mean(-1)


@fp32
def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)), summed over latent dims, mean over batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)).mean(-1)


@fp32
def gan_d_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator binary cross-entropy: real -> 1, fake -> 0 (Goodfellow et al. 2014)."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


@fp32
def gan_fake_bce(fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's term for one more kind of fake: -log(1 - D(x_fake))."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


@fp32
def gan_g_bce(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss -log D(G(z)) (Goodfellow et al. 2014, section 3)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


@fp32
def pixel_mse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel (both in [0, 1]): the 'reconstruction error' Chaturvedula
    reports (0.092)."""
    return (x_hat - x).pow(2).mean()


@fp32
def pixel_bce(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy per pixel of a reconstruction in [0, 1] against x in [0, 1]."""
    return F.binary_cross_entropy(x_hat.clamp(1e-6, 1 - 1e-6), x)


# --- Gaussian densities and divergences (latent terms) ------------------------------

LOG_2PI = 1.8378770664093453  # log(2 pi)


@fp32
def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)), summed over the last dimension (broadcasts)."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


@fp32
def kl_diag(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_q, var_q) || N(mu_p, var_p)) for diagonal Gaussians, summed over the last dimension
    (broadcasts; no batch mean)."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1).sum(-1)


# --- maximum mean discrepancy (InfoVAE, WAE) ----------------------------------------


@fp32
def imq_kernel(a: torch.Tensor, b: torch.Tensor, c: float) -> torch.Tensor:
    """Inverse multiquadratic kernel C / (C + ||a - b||^2) (Tolstikhin et al. 2018, section 4),
    (N, D) x (M, D) -> (N, M)."""
    return c / (c + torch.cdist(a, b).pow(2))


@fp32
def rbf_kernel(a: torch.Tensor, b: torch.Tensor, c: float) -> torch.Tensor:
    """Gaussian kernel exp(-||a - b||^2 / C) (Zhao et al. 2019, section 4), (N, D) x (M, D) -> (N, M)."""
    return torch.exp(-torch.cdist(a, b).pow(2) / c)


KERNELS = {"imq": imq_kernel, "rbf": rbf_kernel}


@fp32
def mmd(z: torch.Tensor, z_prior: torch.Tensor, kernel: str = "imq", c: float = 1.0) -> torch.Tensor:
    """Unbiased U-statistic estimate of MMD^2 between codes ``z`` (..., N, D) and prior draws
    ``z_prior`` (..., N, D) (Tolstikhin et al. 2018, Algorithm 2; Gretton et al. 2012):
    mean_{i != j} k(z_i, z_j) + mean_{i != j} k(p_i, p_j) - 2 mean_{i, j} k(z_i, p_j)."""
    k = KERNELS[kernel]
    n = z.shape[-2]
    off = 1.0 - torch.eye(n, device=z.device, dtype=z.dtype)
    k_zz = (k(z, z, c) * off).sum((-2, -1)) / (n * (n - 1))
    k_pp = (k(z_prior, z_prior, c) * off).sum((-2, -1)) / (n * (n - 1))
    return k_zz + k_pp - 2.0 * k(z, z_prior, c).mean((-2, -1))


# --- mixture priors (VaDE, GMVAE, VampPrior) ----------------------------------------


@fp32
def vade_regularizer(z, mu, logvar, log_pi, mu_c, logvar_c) -> torch.Tensor:
    """VaDE's latent terms (Jiang et al. 2017, eq. 17, negated), mean over the batch:
    sum_c gamma_c KL(q(z|x) || N(mu_c, var_c)) + KL(gamma || pi), with
    gamma_c = q(c|x) ~= p(c|z) = pi_c N(z; mu_c, var_c) / sum_c' (...) at the sampled z.
    z, mu, logvar: (B, D); log_pi: (K,) normalised; mu_c, logvar_c: (K, D)."""
    log_pz_c = log_normal_diag(z.unsqueeze(1), mu_c, logvar_c)  # (B, K)
    log_gamma = torch.log_softmax(log_pi + log_pz_c, dim=1)  # (B, K)
    gamma = log_gamma.exp()
    kl_z = kl_diag(mu.unsqueeze(1), logvar.unsqueeze(1), mu_c, logvar_c)  # (B, K)
    kl_c = (gamma * (log_gamma - log_pi)).sum(1)  # (B,)
    return ((gamma * kl_z).sum(1) + kl_c).mean()


@fp32
def gmvae_terms(z, mu, logvar, w_mu, w_logvar, mu_cw, logvar_cw) -> dict[str, torch.Tensor]:
    """The three latent terms of the GMVAE bound (Dilokthanakul et al. 2016, eq. 5), batch means:
    ``w_prior``   KL(q(w|x) || N(0, I));
    ``cond_prior`` E_{p(c|z,w)} KL(q(z|x) || p(z|w, c)) (the mixture prior term);
    ``c_prior``   KL(p(c|z,w) || p(c)) with a uniform p(c) (the 'z-prior' term).
    p(c|z,w) is the exact posterior of the component at the sampled z and w.
    z, mu, logvar: (B, D); w_mu, w_logvar: (B, W); mu_cw, logvar_cw: (B, K, D)."""
    k = mu_cw.shape[1]
    log_pc = torch.log_softmax(log_normal_diag(z.unsqueeze(1), mu_cw, logvar_cw), dim=1)  # (B, K)
    pc = log_pc.exp()
    cond = (pc * kl_diag(mu.unsqueeze(1), logvar.unsqueeze(1), mu_cw, logvar_cw)).sum(1)  # (B,)
    c_prior = (pc * (log_pc + torch.log(torch.tensor(float(k))))).sum(1)  # (B,)
    return {"w_prior": kl_normal(w_mu, w_logvar), "cond_prior": cond.mean(), "c_prior": c_prior.mean()}


@fp32
def vamp_log_prior(z: torch.Tensor, mu_k: torch.Tensor, logvar_k: torch.Tensor) -> torch.Tensor:
    """log of the VampPrior (Tomczak & Welling 2018, eq. 9): log (1/K) sum_k q(z | u_k);
    z: (B, D), mu_k, logvar_k: (K, D), the encoder's outputs on the K pseudo-inputs -> (B,)."""
    log_q = log_normal_diag(z.unsqueeze(1), mu_k, logvar_k)  # (B, K)
    return torch.logsumexp(log_q, dim=1) - torch.log(torch.tensor(float(mu_k.shape[0])))


@fp32
def l2_penalty(params, member_dims: int = 0) -> torch.Tensor:
    """Sum of squared entries of every tensor in ``params`` (RAE-L2's decoder penalty), one per
    index of the first ``member_dims`` axes (a stacked model's members)."""
    return sum(p.pow(2).flatten(member_dims).sum(-1) for p in params)


@fp32
def feature_mse(f_x: torch.Tensor, f_rec: torch.Tensor) -> torch.Tensor:
    """Gaussian -log p(Dis_l(x) | z) with identity covariance up to a constant (Larsen et al. 2016,
    eq. 6): 0.5 * squared error summed over features, mean over the batch."""
    return 0.5 * (_flat(f_x) - _flat(f_rec)).pow(2).sum(1).mean()


# --- Zemouri 2020: semi-supervised adversarial VAE -------------------------


@fp32
def masked_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Categorical cross-entropy (eq. 7) averaged over the labelled items of the batch;
    labels < 0 mark unlabelled items, which add nothing. 0 when none is labelled."""
    labelled = (y >= 0).float()
    ce = F.cross_entropy(logits, y.clamp(min=0), reduction="none")
    return (ce * labelled).sum() / labelled.sum().clamp(min=1.0)


@fp32
def least_squares(pred: torch.Tensor, target: float) -> torch.Tensor:
    """E[(G - Dis(x))^2] against a constant label (Algorithm 2: +1 real, -1 generated)."""
    return (pred - target).pow(2).mean()


@fp32
def paired_squares(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """E[(a - b)^2] over the batch (eq. 10's L_adv on the discriminator's one score per image)."""
    return (a - b).pow(2).mean()


@fp32
def squared_norm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """E[||a - b||^2]: the squared norm summed over features, averaged over the batch (eq. 11's
    L_latent on the class probabilities)."""
    return (a - b).pow(2).flatten(1).sum(1).mean()


@fp32
def feature_consistency(feats: list[torch.Tensor], feats_hat: list[torch.Tensor],
                        alpha: tuple[float, ...]) -> torch.Tensor:
    """Deep-feature reconstruction loss (eq. 9): sum_i alpha_i E[(F_i - F^_i)^2].

    The paper writes E[||F_i - F^_i||^2] without saying what the expectation runs over;
    we average over every feature element. Summing over the ~25k elements of a 28x28x32 map instead would make L_rec
    thousands of times larger, and then no beta in the paper's range (<= 0.5) could ever
    let the adversarial term dominate, which section 4.4 reports at beta = 0.1."""
    return sum(a * (f - g).pow(2).mean() for a, f, g in zip(alpha, feats, feats_hat))
