"""Ko et al. 2024's baselines with a mixture prior (Ko et al. 2024, section 4.2): VaDE, GMVAE and
the VampPrior VAE, each with 10 mixture components as in the paper. They keep the protocol
networks and the BCE reconstruction and change the prior p(z): its KL term (the regularizer)
and the prior they sample from (``prior_sample``: the learned mixture, as in the paper's
Figures 6 and 7, where each row is one component).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from raygen.core.errors import RaygenError
from raygen.core.registry import MODELS
from raygen.core.settings import setting
from raygen.models import losses
from raygen.models.base import adam, step
from raygen.models.nets import MLP
from raygen.models.vae import reparameterize
from raygen.models.vae_variants import VAE, VAEConfig
from raygen.record.keys import Kind


@dataclass
class MixtureConfig(VAEConfig):
    # Ko et al. 2024: "10 clusters were used for the GMM of GMVAE, VaDE, VampVAE"
    components: int = setting(10, ge=1, le=10_000)


class MixturePriorVAE(VAE):
    Config = MixtureConfig
    # mixture components (VampVAE: pseudo-inputs; Tomczak and Welling use 500 on MNIST)
    search_space = {**VAE.search_space, "components": {"choice": [5, 10, 20, 50]}}
    stackable = False
    stack_refusal = "has a mixture prior whose training is not vectorised"

    def __init__(self, cfg: MixtureConfig, shape, num_classes: int = 10):
        if cfg.components < 1:
            raise RaygenError(f"components must be at least 1, got {cfg.components}")
        super().__init__(cfg, shape, num_classes)


# --- VaDE -------------------------------------------------------------------------------


@dataclass
class VaDEConfig(MixtureConfig):
    # Jiang et al. (2017) initialise VaDE from a pretrained autoencoder and a GMM fitted to its
    # codes (section 3.3); they give no epoch count in a form that maps here: 10 epochs (our
    # choice), at batch 100 (Ko et al. 2024's), counted in train_time_s as Ko et al. 2024's Table 4 does.
    pretrain_epochs: int = setting(10, ge=0, le=1_000_000)


@MODELS.register("vade")
class VaDE(MixturePriorVAE):
    """Jiang et al. (2017), Variational Deep Embedding: p(c) = Cat(pi), p(z|c) = N(mu_c, var_c),
    q(c|x) ~= p(c|z); loss = BCE + sum_c gamma_c KL(q(z|x) || p(z|c)) + KL(gamma || pi)
    (eq. 17). pi, mu_c and var_c are parameters trained with the networks."""

    Config = VaDEConfig
    reports = {**VAE.reports, "pretrain_recon": Kind.LOSS, "pretrain_s": Kind.TIME}  # pretraining: on_train_start
    stack_refusal = "pretrains an autoencoder and fits a GMM in on_train_start"

    def __init__(self, cfg: VaDEConfig, shape, num_classes: int = 10):
        super().__init__(cfg, shape, num_classes)
        k, d = cfg.components, cfg.latent_dim
        self.pi_logits = nn.Parameter(torch.zeros(k))  # (K,) pi = softmax(pi_logits)
        self.mu_c = nn.Parameter(torch.randn(k, d))  # (K, latent)
        self.logvar_c = nn.Parameter(torch.zeros(k, d))  # (K, latent)

    def regularizer(self, z, mu, logvar):
        return losses.vade_regularizer(z, mu, logvar, torch.log_softmax(self.pi_logits, 0), self.mu_c, self.logvar_c)

    def prior_sample(self, n: int) -> torch.Tensor:
        c = torch.multinomial(torch.softmax(self.pi_logits, 0), n, replacement=True)  # (n,)
        return reparameterize(self.mu_c[c], self.logvar_c[c])

    def on_train_start(self, data, ctx) -> dict:
        """Pretrain encoder mean and decoder as an autoencoder, then fit a diagonal GMM to the
        codes to initialise pi, mu_c, var_c (Jiang et al. 2017, section 3.3)."""
        if self.cfg.pretrain_epochs <= 0:
            return {}
        from sklearn.mixture import GaussianMixture

        t0 = time.perf_counter()
        opt = adam([*self.encoder.parameters(), *self.decoder.parameters()], lr=self.cfg.lr)
        gen = torch.Generator().manual_seed(ctx.seed)
        for _ in range(self.cfg.pretrain_epochs):
            for x, _ in data.train.batches(100, gen):
                rec = self.recon_loss(self.decoder(self.encode(x)), x)
                step(opt, rec)
        with torch.no_grad():
            codes = torch.cat([self.encode(data.train.x[i:i + 1000]) for i in range(0, len(data.train), 1000)])
            gmm = GaussianMixture(self.cfg.components, covariance_type="diag", random_state=ctx.seed)
            gmm.fit(codes.double().cpu().numpy())
            self.pi_logits.copy_(torch.tensor(gmm.weights_).log())
            self.mu_c.copy_(torch.tensor(gmm.means_))
            self.logvar_c.copy_(torch.tensor(gmm.covariances_).log())
        return {"pretrain_recon": float(rec.detach()), "pretrain_s": time.perf_counter() - t0}


# --- GMVAE ------------------------------------------------------------------------------


@dataclass
class GMVAEConfig(MixtureConfig):
    # dimension of w (0: latent_dim); the paper's sizes are for its own networks
    w_dim: int = setting(0, ge=0, le=100_000)
    # the beta network w -> (mu_c(w), var_c(w)): one hidden layer (our width)
    prior_hidden: int = setting(500, ge=1, le=1_000_000)
    # Dilokthanakul et al. (section 3.2) bound the z-prior term below by lambda (Kingma et al.
    # 2016's free bits) to stop components collapsing; 0.5 nats is our choice (Ko et al. retuned
    # GMVAE and do not say how).
    free_bits: float = setting(0.5, ge=0)


@MODELS.register("gmvae")
class GMVAE(MixturePriorVAE):
    """Dilokthanakul et al. (2016), Gaussian mixture VAE: w ~ N(0, I), c ~ Cat(1/K),
    z | w, c ~ N(mu_c(w), var_c(w)), x | z. Inference q(z|x) q(w|x) with the exact p(c|z,w).
    loss = BCE + KL(q(w|x) || p(w)) + E_{p(c|z,w)} KL(q(z|x) || p(z|w,c))
    + max(lambda, KL(p(c|z,w) || p(c))) (eq. 5, with the information constraint of section 3.2)."""

    Config = GMVAEConfig
    reports = {**VAE.reports, **dict.fromkeys(("w_prior", "cond_prior", "c_prior"), Kind.LOSS)}
    stack_refusal = "draws its loss's noise outside the noise hook (two reparameterisations; not vectorised yet)"

    def __init__(self, cfg: GMVAEConfig, shape, num_classes: int = 10):
        super().__init__(cfg, shape, num_classes)
        k, d = cfg.components, cfg.latent_dim
        self.prior_net = MLP([self.w_dim, cfg.prior_hidden, 2 * k * d], act=cfg.act)

    @property
    def w_dim(self) -> int:
        return self.cfg.w_dim or self.cfg.latent_dim

    def encoder_outputs(self) -> int:
        return 2 * self.cfg.latent_dim + 2 * self.w_dim  # (mu, logvar) of z, then of w

    def split(self, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        d, w = self.cfg.latent_dim, self.w_dim
        return h.split([d, d, w, w], dim=1)  # mu, logvar (B, latent); w_mu, w_logvar (B, w_dim)

    def encode_dist(self, x):
        mu, logvar, _, _ = self.split(self.encoder(x))
        return mu, logvar

    def prior_params(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu_c(w), logvar_c(w)), each (B, K, latent)."""
        out = self.prior_net(w).view(w.shape[0], self.cfg.components, 2 * self.cfg.latent_dim)
        mu_cw, logvar_cw = out.chunk(2, dim=-1)
        return mu_cw, logvar_cw

    def loss(self, x, y=None):
        mu, logvar, w_mu, w_logvar = self.split(self.encoder(x))
        z, w = reparameterize(mu, logvar), reparameterize(w_mu, w_logvar)
        rec = self.recon_loss(self.decoder(z), x)
        terms = losses.gmvae_terms(z, mu, logvar, w_mu, w_logvar, *self.prior_params(w))
        reg = terms["w_prior"] + terms["cond_prior"] + terms["c_prior"].clamp(min=self.cfg.free_bits)
        return {"loss": rec + reg, "recon_loss": rec, "reg_loss": reg, **terms}

    def prior_sample(self, n: int) -> torch.Tensor:
        w = torch.randn(n, self.w_dim, device=self.device)
        mu_cw, logvar_cw = self.prior_params(w)  # (n, K, latent)
        c = torch.randint(self.cfg.components, (n,), device=self.device)
        rows = torch.arange(n, device=self.device)
        return reparameterize(mu_cw[rows, c], logvar_cw[rows, c])


# --- VampPrior --------------------------------------------------------------------------


@dataclass
class VampVAEConfig(MixtureConfig):
    # Tomczak & Welling train with a KL warm-up: the latent term's weight rises linearly from
    # 1/warmup_epochs to 1 over the first warmup_epochs epochs (100 in their experiments). Ko
    # et al. 2024 do not mention one and train 30 epochs (a 100-epoch warm-up would never
    # reach the full ELBO), so their protocol runs without it: 0.
    warmup_epochs: int = setting(0, ge=0, le=1_000_000)


@MODELS.register("vamp_vae")
class VampVAE(MixturePriorVAE):
    """Tomczak & Welling (2018), the VampPrior: p(z) = (1/K) sum_k q(z | u_k) with K learned
    pseudo-inputs u_k (eq. 9); loss = BCE + E_q[log q(z|x) - log p(z)], one sample of z.
    Pseudo-inputs stay in the data range through a hardtanh (their implementation's choice).
    K = 10 here (Ko et al. 2024; the paper uses 500). They start as K random training items (our
    choice), or uniform noise in the data range before training."""

    Config = VampVAEConfig
    reports = {**VAE.reports, "kl_weight": Kind.LOSS}  # with warmup_epochs: the KL weight of the next epoch
    stack_refusal = "copies data into its pseudo-inputs in on_train_start and changes its KL weight on_epoch_end"

    def __init__(self, cfg: VampVAEConfig, shape, num_classes: int = 10):
        super().__init__(cfg, shape, num_classes)
        if cfg.warmup_epochs < 0:
            raise RaygenError(f"warmup_epochs must be >= 0 (0: no warm-up), got {cfg.warmup_epochs}")
        lo, hi = cfg.data_range or (-1.0, 1.0)
        # uniform in the data range (uniform_, not rand: on the meta device rand's decomposition imports torch._dynamo)
        self.pseudo_inputs = nn.Parameter(torch.empty(cfg.components, *self.shape).uniform_(lo, hi))  # (K, *shape)
        self.register_buffer("kl_weight", torch.tensor(self.warmup(1)))  # this epoch's; checkpoints keep it

    def warmup(self, epoch: int) -> float:
        return min(1.0, epoch / self.cfg.warmup_epochs) if self.cfg.warmup_epochs else 1.0

    def on_epoch_end(self, epoch: int, data) -> dict:
        self.kl_weight.fill_(self.warmup(epoch + 1))
        return {"kl_weight": float(self.kl_weight)} if self.cfg.warmup_epochs else {}

    def pseudo(self) -> torch.Tensor:
        rng = self.cfg.data_range
        return self.pseudo_inputs if rng is None else nn.functional.hardtanh(self.pseudo_inputs, *rng)

    def prior_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_dist(self.pseudo())  # (K, latent) each

    def regularizer(self, z, mu, logvar):
        log_q = losses.log_normal_diag(z, mu, logvar)  # (B,)
        return self.kl_weight * (log_q - losses.vamp_log_prior(z, *self.prior_params())).mean()

    def prior_sample(self, n: int) -> torch.Tensor:
        mu_k, logvar_k = self.prior_params()
        k = torch.randint(self.cfg.components, (n,), device=self.device)
        return reparameterize(mu_k[k], logvar_k[k])

    def on_train_start(self, data, ctx) -> dict:
        idx = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(ctx.seed))[: self.cfg.components]
        with torch.no_grad():  # fewer training items than K: the rest keep their noise start
            self.pseudo_inputs[: len(idx)].copy_(data.train.x[idx.to(data.train.x.device)])
        return {}
