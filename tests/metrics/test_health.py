"""Training-health checks: a trial of a model that failed to train says so, with the reason."""
from __future__ import annotations

import pytest
import torch

from raygen.engine.trial import Trial
from raygen.metrics import health


class Encoder(torch.nn.Module):
    """A stand-in encoder whose posterior means vary in the first ``active`` units only."""
    has_encoder = True

    def __init__(self, active: int, latent: int = 6):
        super().__init__()
        self.active, self.latent = active, latent

    def encode_dist(self, x):
        mu = torch.zeros(len(x), self.latent)
        mu[:, :self.active] = x.flatten(1)[:, :1] * 10  # varies with the input
        logvar = torch.zeros_like(mu)  # unit variance: KL = mu^2 / 2
        return mu, logvar


def test_active_units_follow_burda_et_al_and_unused_units_have_no_kl():
    x = torch.rand(500, 1, 4, 4)
    out = health.latent_health(Encoder(active=2), x, batch=64)
    assert out == {"active_units": 2, "kl_collapsed_units": 4}


def test_the_mean_image_baseline_is_the_mse_of_the_training_mean():
    train = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    assert health.mean_image_mse(train, torch.tensor([[0.5, 0.0]])) == pytest.approx(0.5)


@pytest.mark.parametrize("result, verdict, reason", [
    ({"recon_mse": 0.01, "recon_mse_mean_image": 0.07, "active_units": 9, "cls_coverage": 10}, "ok", ""),
    ({"recon_mse": 0.08, "recon_mse_mean_image": 0.07}, "failed", "no better than the mean image"),
    ({"cls_coverage": 6}, "warning", "6 of 10 classes"),
    ({"cls_coverage": 2}, "failed", "mode collapse"),
    ({"active_units": 3}, "warning", "3 of 10 latent units active"),
    ({"active_units": 0}, "failed", "posterior collapse"),
    ({"d_saturated_share": 0.8}, "failed", "discriminator saturated"),
    ({"d_saturated_share": 0.1}, "warning", "saturated in 10% of epochs"),
    ({"status": "diverged", "error": "non-finite loss at epoch 3"}, "failed", "non-finite loss"),
])
def test_the_verdict_names_what_went_wrong(result, verdict, reason):
    got, why = health.verdict(result, latent_dim=10, num_classes=10)
    assert got == verdict and reason in why


def test_saturation_counts_epochs_with_a_near_zero_discriminator_loss():
    history = [{"d_loss": 0.7}, {"d_loss": 1e-5}, {"d_loss": 2e-4}, {"loss": 1.0}]
    assert health.saturated_share(history) == pytest.approx(2 / 3)
    assert health.saturated_share([{"loss": 1.0}]) is None


TINY = {"dataset": "mnist", "epochs": 3, "max_batches": 15, "eval_samples": 400, "batch_size": 64}


def test_a_vae_crushed_by_its_kl_weight_is_flagged(data_root):
    t = Trial({**TINY, "model": "beta_vae", "beta": 1e4, "hidden": [64, 64]}, data_root=str(data_root))
    r = t.fit()
    assert r["health"] == "failed" and "posterior collapse" in r["health_reason"]
    assert r["active_units"] == 0 and r["kl_collapsed_units"] == 10


def test_a_gan_whose_discriminator_learns_100x_faster_is_flagged(data_root):
    t = Trial({**TINY, "model": "gan_mlp", "lr_dis": 2e-2, "gen_hidden": [64, 128], "dis_hidden": [128, 64],
               "epochs": 4}, data_root=str(data_root))
    r = t.fit()
    assert r["health"] == "failed" and "discriminator saturated" in r["health_reason"]
    assert r["d_saturated_share"] >= 0.5
