"""Ko et al. 2024's baselines: each model's distinguishing loss term on a tiny batch of real MNIST,
checked against the formula of its paper computed independently here (numpy / scipy loops,
float64), not through raygen.losses."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import norm

from raygen.core.errors import RaygenError
from raygen.engine.config import split_config

SHAPE = (1, 28, 28)


pytestmark = pytest.mark.usefixtures("float64")  # gradients compared to 1e-10


def build(name: str, **overrides):
    _, cls, cfg = split_config({"model": name, "hidden": [32, 32, 64], "latent_dim": 3, **overrides})
    torch.manual_seed(0)
    return cls(cfg, SHAPE, num_classes=10)


def np_(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy()


def kl_std_normal(mu: np.ndarray, logvar: np.ndarray) -> float:
    """Kingma & Welling (2014), appendix B, per example, then the batch mean."""
    per = [-0.5 * sum(1 + lv - m**2 - math.exp(lv) for m, lv in zip(mu[i], logvar[i])) for i in range(len(mu))]
    return float(np.mean(per))


def mmd_loops(a: np.ndarray, b: np.ndarray, k) -> float:
    n = len(a)
    same_a = sum(k(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    same_b = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    cross = sum(k(a[i], b[j]) for i in range(n) for j in range(n)) / n**2
    return same_a + same_b - 2 * cross


@pytest.fixture
def x(mnist_batch):
    return mnist_batch[:6].double()


def test_beta_vae_weights_the_kl_by_beta_4(x):
    model = build("beta_vae")
    z, mu, logvar = model.encode_sample(x)
    assert model.cfg.beta == 4.0
    expected = 4.0 * kl_std_normal(np_(mu), np_(logvar))
    assert model.regularizer(z, mu, logvar).item() == pytest.approx(expected, rel=1e-10)


def test_info_vae_is_kl_plus_weighted_gaussian_kernel_mmd(x):
    model = build("info_vae", info_alpha=0.25, info_lambda=10.0)
    z, mu, logvar = model.encode_sample(x)
    torch.manual_seed(7)
    reg = model.regularizer(z, mu, logvar).item()
    torch.manual_seed(7)  # the regularizer draws its prior sample first: the same draw
    prior = np_(torch.randn(6, 3))
    d = 3
    # Zhao et al.'s MMD-VAE code: exp(-mean_i (u_i - v_i)^2 / d), i.e. C = d^2
    mmd = mmd_loops(np_(z), prior, lambda u, v: math.exp(-float(np.mean((u - v) ** 2)) / d))
    expected = (1 - 0.25) * kl_std_normal(np_(mu), np_(logvar)) + (0.25 + 10.0 - 1) * mmd
    assert reg == pytest.approx(expected, rel=1e-9)
    assert abs(mmd) > 1e-4  # the MMD term is really in there


def test_wae_is_deterministic_with_an_imq_kernel_mmd(x):
    model = build("wae")
    z, mu, logvar = model.encode_sample(x)
    assert logvar is None and torch.equal(z, mu) and torch.equal(z, model.encoder(x))
    torch.manual_seed(3)
    reg = model.regularizer(z, mu, logvar).item()
    torch.manual_seed(3)
    prior = np_(torch.randn(6, 3))
    c = 2.0 * 3 * 1.0  # C = 2 d sigma^2 with the N(0, I) prior
    mmd = mmd_loops(np_(z), prior, lambda u, v: c / (c + float(np.sum((u - v) ** 2))))
    assert reg == pytest.approx(10.0 * mmd, rel=1e-9)


def test_rae_l2_penalises_codes_and_every_decoder_weight(x):
    model = build("rae_l2", z_weight=0.3, decoder_l2=1e-3)
    z, mu, logvar = model.encode_sample(x)
    codes = np_(z)
    code_term = np.mean([0.5 * sum(v * v for v in row) for row in codes])
    weights = sum(float(np.sum(np_(p) ** 2)) for name, p in model.state_dict().items() if name.startswith("decoder."))
    reg = model.regularizer(z, mu, logvar).item()
    assert reg == pytest.approx(0.3 * code_term + 1e-3 * weights, rel=1e-10)
    encoder_weights = sum(float(np.sum(np_(p) ** 2)) for n, p in model.state_dict().items() if n.startswith("encoder."))
    assert reg != pytest.approx(0.3 * code_term + 1e-3 * (weights + encoder_weights), rel=1e-6)


def test_vade_mixture_prior_term_matches_eq_17(x):
    model = build("vade", components=4)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():  # a non-trivial mixture: unequal weights, spread means and variances
        model.pi_logits.copy_(torch.randn(4, generator=g))
        model.mu_c.copy_(torch.randn(4, 3, generator=g))
        model.logvar_c.copy_(0.5 * torch.randn(4, 3, generator=g))
    z, mu, logvar = model.encode_sample(x)
    reg = model.regularizer(z, mu, logvar).item()
    pi = np.exp(np_(model.pi_logits)) / np.exp(np_(model.pi_logits)).sum()
    mc, vc = np_(model.mu_c), np.exp(np_(model.logvar_c))
    zs, ms, vs = np_(z), np_(mu), np.exp(np_(logvar))
    total = 0.0
    for i in range(len(zs)):
        dens = [pi[c] * np.prod(norm.pdf(zs[i], mc[c], np.sqrt(vc[c]))) for c in range(4)]
        gamma = np.array(dens) / sum(dens)
        # Jiang et al. (2017), eq. 17 without the reconstruction term, negated
        term = 0.5 * sum(gamma[c] * sum(math.log(vc[c, j]) + vs[i, j] / vc[c, j] + (ms[i, j] - mc[c, j]) ** 2 / vc[c, j]
                                        for j in range(3)) for c in range(4))
        term -= sum(gamma[c] * math.log(pi[c] / gamma[c]) for c in range(4))
        term -= 0.5 * sum(1 + math.log(vs[i, j]) for j in range(3))
        total += term
    assert reg == pytest.approx(total / len(zs), rel=1e-8)


def test_gmvae_terms_match_dilokthanakul_eq_5(x):
    model = build("gmvae", components=3, w_dim=2, prior_hidden=16, free_bits=0.0)
    h = model.encoder(x)
    mu, logvar, w_mu, w_logvar = h[:, :3], h[:, 3:6], h[:, 6:8], h[:, 8:10]
    torch.manual_seed(11)
    out = model.loss(x)
    torch.manual_seed(11)  # the loss draws eps for z, then for w
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    w = w_mu + torch.randn_like(w_mu) * (0.5 * w_logvar).exp()
    prior = np_(model.prior_net(w)).reshape(6, 3, 6)  # (B, K, mu_c(w) then logvar_c(w))
    zs, ms, vs = np_(z), np_(mu), np.exp(np_(logvar))
    cond, cpri = [], []
    for i in range(6):
        mc, vc = prior[i, :, :3], np.exp(prior[i, :, 3:])
        logp = np.array([norm.logpdf(zs[i], mc[c], np.sqrt(vc[c])).sum() for c in range(3)])
        pc = np.exp(logp - logsumexp(logp))
        kl = [0.5 * sum(math.log(vc[c, j] / vs[i, j]) + (vs[i, j] + (ms[i, j] - mc[c, j]) ** 2) / vc[c, j] - 1
                        for j in range(3)) for c in range(3)]
        cond.append(sum(pc[c] * kl[c] for c in range(3)))
        cpri.append(sum(pc[c] * math.log(pc[c] / (1 / 3)) for c in range(3)))
    w_prior = kl_std_normal(np_(w_mu), np_(w_logvar))
    assert out["cond_prior"].item() == pytest.approx(np.mean(cond), rel=1e-8)
    assert out["c_prior"].item() == pytest.approx(np.mean(cpri), rel=1e-8)
    assert out["w_prior"].item() == pytest.approx(w_prior, rel=1e-10)
    assert out["reg_loss"].item() == pytest.approx(w_prior + np.mean(cond) + np.mean(cpri), rel=1e-8)
    bounded = build("gmvae", components=3, w_dim=2, prior_hidden=16, free_bits=50.0)
    torch.manual_seed(11)
    out = bounded.loss(x)  # the z-prior term is held at the free-bits floor
    assert out["reg_loss"].item() == pytest.approx((out["w_prior"] + out["cond_prior"]).item() + 50.0, rel=1e-10)


def test_vamp_prior_is_the_mixture_of_posteriors_of_the_pseudo_inputs(x):
    model = build("vamp_vae", components=5)
    z, mu, logvar = model.encode_sample(x)
    reg = model.regularizer(z, mu, logvar)
    u = torch.from_numpy(np.clip(np_(model.pseudo_inputs), 0.0, 1.0))  # hardtanh to the data range
    h = np_(model.encoder(u))
    mk, vk = h[:, :3], np.exp(h[:, 3:])
    zs, ms, vs = np_(z), np_(mu), np.exp(np_(logvar))
    per = []
    for i in range(6):
        log_q = norm.logpdf(zs[i], ms[i], np.sqrt(vs[i])).sum()
        log_p = logsumexp([norm.logpdf(zs[i], mk[k], np.sqrt(vk[k])).sum() for k in range(5)]) - math.log(5)
        per.append(log_q - log_p)
    assert reg.item() == pytest.approx(np.mean(per), rel=1e-8)
    reg.backward()  # the prior is learned: its pseudo-inputs get gradients
    assert model.pseudo_inputs.grad is not None and model.pseudo_inputs.grad.abs().sum() > 0


def test_vae_gan_reconstructs_in_the_discriminators_last_hidden_layer(x):
    """``llike: feature`` (the paper's): the discriminator's last hidden layer, dropout off in eval."""
    model = build("vae_gan", llike="feature")
    model.discriminator.eval()
    features, logits = model.discriminator(x)
    model.discriminator.train()
    hid = x.reshape(6, -1).numpy()
    linears = [m for m in model.discriminator.net.modules() if isinstance(m, torch.nn.Linear)]
    for lin in linears[:-1]:  # Linear + ReLU, by hand
        hid = np.maximum(hid @ np_(lin.weight).T + np_(lin.bias), 0.0)
    assert features.shape == (6, 64) and np.allclose(np_(features), hid, rtol=1e-10)
    assert np.allclose(np_(logits), hid @ np_(linears[-1].weight).T + np_(linears[-1].bias), rtol=1e-10)
    opts = model.configure_optimizers()
    assert set(opts) == {"enc", "dec", "dis"}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = model.train_step(x, None, opts)
    assert {"recon_loss", "reg_loss", "g_loss", "d_loss"} <= set(out)
    for part in ("encoder.", "decoder.", "discriminator."):  # every network moved on its own loss
        assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items() if k.startswith(part)), part


@pytest.mark.parametrize("overrides, message", [
    ({"model": "gae", "sampler": "prior"}, "no prior to sample from"),
    ({"model": "vae", "sampler": "kde"}, "sampler must be one of prior, gaussian, gmm"),
    ({"model": "rae_l2", "sampler_components": 0}, "sampler_components must be a number >= 1"),
    ({"model": "gae", "delta": -1}, "delta must be a number >= 0"),
    ({"model": "info_vae", "kernel": "laplace"}, "kernel must be one of"),
    ({"model": "info_vae", "bandwidth": "wide"}, "bandwidth must be one of"),
    ({"model": "vade", "components": 0}, "components must be a number >= 1"),
    ({"model": "vae", "recon_reduction": "max"}, "recon_reduction must be one of"),
])
def test_bad_settings_are_clear_errors(overrides, message):
    settings = dict(overrides)
    with pytest.raises(RaygenError, match=message):
        build(settings.pop("model"), **settings)


def test_vamp_vae_kl_warm_up_rises_linearly_and_survives_a_checkpoint(x):
    model = build("vamp_vae", warmup_epochs=4)
    z, mu, logvar = model.encode_sample(x)
    full = build("vamp_vae")
    assert full.kl_weight.item() == 1.0 and model.kl_weight.item() == 0.25  # epoch 1 of 4
    full.load_state_dict({**model.state_dict(), "kl_weight": full.kl_weight})  # the same networks
    assert model.regularizer(z, mu, logvar).item() == pytest.approx(0.25 * full.regularizer(z, mu, logvar).item())
    weights = []
    for epoch in range(1, 6):
        model.on_epoch_end(epoch, None)
        weights.append(model.kl_weight.item())
    assert weights == [0.5, 0.75, 1.0, 1.0, 1.0]
    assert build("vamp_vae", warmup_epochs=4).state_dict().keys() == model.state_dict().keys()
