"""VAE-GAN's balancing (Larsen et al.'s released code, see raygen.models.vaegan): the loss
weights recon_vs_gan and real_vs_gen, and the equilibrium rule that freezes a winning
discriminator or drops the GAN term of a losing decoder. Each network's gradient is
recomputed here by hand (torch autograd on formulas written out, not raygen.losses) from the
same random draws, and compared with what train_step applied."""
from __future__ import annotations

import copy

import pytest
import torch

from raygen.engine.config import split_config

SHAPE = (1, 28, 28)


pytestmark = pytest.mark.usefixtures("float64")  # gradients compared to 1e-10


@pytest.fixture
def x(mnist_batch):
    return mnist_batch[:8].double()


def build(**overrides):
    # no dropout: the by-hand pass and train_step would draw different masks
    _, cls, cfg = split_config({"model": "vae_gan", "hidden": [32, 32, 64], "latent_dim": 3, "dis_dropout": 0.0,
                                **overrides})
    torch.manual_seed(0)
    return cls(cfg, SHAPE, num_classes=10)


def by_hand(model, x, seed: int, use_gan: bool) -> dict[str, list[torch.Tensor]]:
    """Each group's gradient, from the module docstring's formulas, with the draws of ``seed``."""
    m, c = copy.deepcopy(model), model.cfg
    b = x.shape[0]
    torch.manual_seed(seed)
    mu, logvar = m.encode_dist(x)
    z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape)
    x_rec = torch.sigmoid(m.decoder(z))
    x_p = torch.sigmoid(m.decoder(torch.randn(b, c.latent_dim)))
    (f_x, real), (f_rec, fake_rec), (_, fake_p) = m.discriminator(x), m.discriminator(x_rec), m.discriminator(x_p)
    kl = (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)).mean()
    if c.llike == "feature":
        llike = 0.5 * ((f_x - f_rec) ** 2).sum(1).mean()
    else:  # Bernoulli pixels
        p = x_rec.flatten(1)
        llike = -(x.flatten(1) * torch.log(p) + (1 - x.flatten(1)) * torch.log(1 - p)).sum(1).mean()
    d = torch.sigmoid
    real_cost = -torch.log(d(real)).mean()
    fake_cost = -torch.log(1 - d(torch.cat([fake_rec, fake_p]))).mean()
    gan = torch.log(1 - d(fake_rec)).mean() + torch.log(1 - d(fake_p)).mean()  # saturating
    w, r = c.recon_vs_gan, c.real_vs_gen
    losses = {"enc": kl + llike, "dec": w * llike + ((1 - w) * gan if use_gan else 0.0),
              "dis": r * real_cost + (1 - r) * fake_cost}
    groups = m.groups()
    return {k: list(torch.autograd.grad(v, groups[k], retain_graph=True)) for k, v in losses.items()}


def applied(model) -> dict[str, list[torch.Tensor | None]]:
    return {k: [p.grad for p in ps] for k, ps in model.groups().items()}


def close(a, b) -> bool:
    return all(torch.allclose(u, v, rtol=1e-9, atol=1e-12) for u, v in zip(a, b))


def test_the_defaults_are_the_released_mnist_script():
    """Larsen et al.'s fully connected MNIST script: pixel BCE, the decoder's VAE gradient at
    0.025 of the GAN's, margin 0.25 around 0.68314718, batch norm in encoder and decoder,
    dropout 0.25 in the discriminator."""
    _, cls, cfg = split_config({"model": "vae_gan", "hidden": [32, 32, 64], "latent_dim": 3})
    assert (cfg.llike, cfg.real_vs_gen, cfg.equilibrium, cfg.margin, cfg.batchnorm, cfg.dis_dropout) == \
        ("pixel", 0.5, 0.68314718, 0.25, True, 0.25)
    assert cfg.recon_vs_gan / (1 - cfg.recon_vs_gan) == pytest.approx(0.025)
    model = cls(cfg, SHAPE, num_classes=10)
    kinds = lambda net: {type(m).__name__ for m in net.modules()}
    assert "BatchNorm1d" in kinds(model.encoder) and "BatchNorm1d" in kinds(model.decoder)
    assert "Dropout" in kinds(model.discriminator) and "BatchNorm1d" not in kinds(model.discriminator)
    assert "BatchNorm1d" not in kinds(build(batchnorm=False).decoder)


def test_the_equilibrium_rule():
    """equilibrium 0.68, margin 0.4: the discriminator rests below 0.28, the decoder's GAN term
    above 1.08 (either cost), and when both would rest, neither does."""
    model = build(equilibrium=0.68, margin=0.4)
    assert model.balance(0.69, 0.69) == (True, True)
    assert model.balance(0.27, 0.69) == (False, True)
    assert model.balance(0.69, 0.2) == (False, True)
    assert model.balance(1.1, 0.69) == (True, False)
    assert model.balance(0.69, 1.5) == (True, False)
    assert model.balance(0.1, 2.0) == (True, True)  # both would rest: both train


def one_step(model, x, seed: int):
    """One training step with the optimizers the model declares, torch's RNG at ``seed``."""
    opts = model.configure_optimizers()
    torch.manual_seed(seed)
    return model.train_step(x, None, opts), opts


@pytest.mark.parametrize("settings, seed, use_gan", [
    # away from the margins every network trains, on the weighted losses; the GAN term moves the decoder
    ({"recon_vs_gan": 0.3, "real_vs_gen": 0.8}, 1, True),
    ({"recon_vs_gan": 0.3, "llike": "feature", "batchnorm": False}, 1, True),  # the paper's feature-wise error
    # costs ~0.69 over equilibrium 0.1 + margin 0.05: the decoder trains on w * L_llike alone,
    # the discriminator on its weighted loss
    ({"equilibrium": 0.1, "margin": 0.05}, 3, False),
])
def test_each_network_gets_its_weighted_gradient(x, settings, seed, use_gan):
    model = build(**settings)
    want = by_hand(model, x, seed=seed, use_gan=use_gan)
    other = by_hand(model, x, seed=seed, use_gan=not use_gan)["dec"]
    out, _ = one_step(model, x, seed=seed)
    assert out["d_skipped"].item() == 0.0 and out["g_skipped"].item() == float(not use_gan)
    assert all(close(got, want[k]) for k, got in applied(model).items())
    assert not close(applied(model)["dec"], other)  # the GAN term's presence shows in the decoder
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad for v in out.values())


def test_a_winning_discriminator_is_not_updated(x):
    """Costs ~0.69 under equilibrium 5 - margin 4 = 1: the discriminator wins; it does not move
    (nor do its optimizer's moments), the others do."""
    model = build(equilibrium=5.0, margin=4.0)
    want = by_hand(model, x, seed=2, use_gan=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out, opts = one_step(model, x, seed=2)
    assert out["d_skipped"].item() == 1.0 and out["g_skipped"].item() == 0.0
    state = model.state_dict()
    assert all(torch.equal(v, before[k]) for k, v in state.items() if k.startswith("discriminator."))
    for part in ("encoder.", "decoder."):
        assert any(not torch.equal(v, before[k]) for k, v in state.items() if k.startswith(part)), part
    assert not opts["dis"].state
    got = applied(model)
    assert close(got["dec"], want["dec"]) and close(got["enc"], want["enc"])
