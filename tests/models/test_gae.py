"""GAE (Ko et al. 2024, Algorithm 1) and the fitted latent sampler every autoencoder has, trained
for real on the MNIST test split and on the cosine points."""
from __future__ import annotations

import numpy as np
import torch

from raygen.engine.trial import Trial

# one data key for every MNIST trial here, so the split is loaded once per test session
SMALL = {"dataset": "mnist", "split": "test", "limit": 1000, "batch_size": 50, "eval_samples": 200,
         "hidden": [64, 64, 128]}


def run(trial: Trial) -> dict:
    while True:
        result = trial.train_epoch()
        if result.get("done"):
            return result


def codes(trial: Trial) -> np.ndarray:
    with torch.no_grad():
        trial.model.eval()
        return trial.model.encode(trial.data.train.x).double().numpy()


def test_gae_stops_once_the_reconstruction_error_is_below_delta(data_root, tmp_path):
    t = Trial({**SMALL, "model": "gae", "epochs": 30, "delta": 0.3}, data_root=str(data_root), out_dir=tmp_path)
    result = run(t)
    assert result["status"] == "completed" and result["delta_reached"] is True
    assert 1 < result["epoch"] < 30, result["epoch"]  # stopped early, by delta, not by epochs
    assert result["recon_error"] < 0.3 and result["converged"] is True
    # the error it compared with delta is the per-pixel BCE of the epoch's training batches
    assert abs(result["recon_error"] - result["recon_loss"] / 784) < 1e-6
    assert t.model.latent_fit.fitted and np.isfinite(result["sampler_loglik"])
    assert (tmp_path / "samples.png").exists() and result["samples_png"] == "samples.png"


def test_gae_that_misses_delta_trains_every_epoch_and_says_so(data_root):
    t = Trial({**SMALL, "model": "gae", "epochs": 2, "delta": 0.01, "max_batches": 5}, data_root=str(data_root))
    first = t.train_epoch()
    assert first["delta_reached"] is False and "status" not in first
    result = t.train_epoch()
    assert result["status"] == "completed" and result["epoch"] == 2 and result["delta_reached"] is False


def test_under_the_table_protocol_gae_trains_every_epoch_and_records_when_it_reached_delta(data_root):
    t = Trial({**SMALL, "model": "gae", "epochs": 4, "delta": 0.3, "stop_at_delta": False},
              data_root=str(data_root))
    results = [t.train_epoch() for _ in range(4)]
    reached = [r["epoch"] for r in results if r["delta_reached"]]
    assert reached and reached[0] < 4, reached  # reached delta, and went on training
    assert results[-1]["status"] == "completed" and results[-1]["epoch"] == 4
    assert all("status" not in r for r in results[:-1])
    assert all(r["delta_epoch"] == reached[0] for r in results if r["epoch"] >= reached[0])
    assert int(t.model.state_dict()["delta_epoch"]) == reached[0]  # checkpoints keep it


def test_the_gmm_is_a_maximum_likelihood_fit_to_the_codes_and_drives_sampling(data_root):
    t = Trial({**SMALL, "model": "gae", "epochs": 1, "delta": 0.0, "max_batches": 10}, data_root=str(data_root))
    run(t)
    fit, z = t.model.latent_fit, codes(t)
    w, means = fit.weights.double().numpy(), fit.means.double().numpy()
    assert fit.components == 10 and abs(w.sum() - 1) < 1e-5
    # after any EM M-step the mixture's mean is the sample mean of the data it was fitted to
    assert np.allclose(w @ means, z.mean(0), atol=1e-3)
    torch.manual_seed(0)
    drawn = t.model.latent_sample(20_000).double().numpy()
    assert np.allclose(drawn.mean(0), z.mean(0), atol=0.1 * z.std(0).max())
    prior = np.random.default_rng(0).standard_normal(drawn.shape)  # what sampling would be without the fit
    assert not np.allclose(prior.mean(0), z.mean(0), atol=0.1 * z.std(0).max())


def test_vae_with_a_fitted_gaussian_is_one_setting_away(data_root):
    t = Trial({**SMALL, "model": "vae", "sampler": "gaussian", "epochs": 1, "max_batches": 10},
              data_root=str(data_root))
    run(t)
    fit, z = t.model.latent_fit, codes(t)  # a VAE's codes are its posterior means
    chol = fit.chol[0].double().numpy()
    assert fit.components == 1
    assert np.allclose(fit.means[0].double().numpy(), z.mean(0), atol=1e-4)
    assert np.allclose(chol @ chol.T, np.cov(z.T, bias=True), atol=1e-4)  # the ML (biased) covariance


def test_checkpoints_carry_the_fitted_sampler(data_root):
    cfg = {**SMALL, "model": "rae_l2", "epochs": 1, "max_batches": 5}
    a = Trial(cfg, data_root=str(data_root))
    run(a)
    b = Trial(cfg, data_root=str(data_root))
    assert not b.model.latent_fit.fitted
    b.load_state(a.state())
    assert b.model.latent_fit.fitted
    a.model.eval(), b.model.eval()
    torch.manual_seed(3)
    sa = a.model.sample(16)
    torch.manual_seed(3)
    assert torch.equal(sa, b.model.sample(16))


def test_vade_pretrains_and_initialises_its_mixture_from_the_codes(data_root):
    t = Trial({**SMALL, "model": "vade", "pretrain_epochs": 1, "epochs": 1, "max_batches": 2},
              data_root=str(data_root))
    with torch.no_grad():
        start = t.model.mu_c.clone()
    t.model.train()
    info = t.model.on_train_start(t.data, t.ctx)
    assert info["pretrain_s"] > 0 and np.isfinite(info["pretrain_recon"])
    pi = torch.softmax(t.model.pi_logits, 0).detach().double().numpy()
    assert not torch.equal(start, t.model.mu_c)
    assert np.allclose(pi @ t.model.mu_c.detach().double().numpy(), codes(t).mean(0), atol=1e-3)


def test_cosine_trial_writes_figure_4_for_vae_and_gae(tmp_path):
    base = {"dataset": "cosine", "split": "auto", "batch_size": 50, "eval_samples": 50, "epochs": 100, "arch": "mlp",
            "hidden": [256], "act": "relu", "latent_dim": 1, "output": "linear", "recon": "mse",
            "recon_reduction": "mean"}
    out = {}
    for model, extra in (("vae_mlp", {}), ("gae", {"sampler": "gaussian", "delta": 0.0})):
        t = Trial({**base, "model": model, **extra}, out_dir=tmp_path / model)
        out[model] = run(t)
        assert out[model]["cosine_png"] == "cosine.png" and (tmp_path / model / "cosine.png").stat().st_size > 10_000
        assert "samples_png" not in out[model]  # point data: no image grids
    assert out["vae_mlp"]["reg_loss"] >= 0 and "reg_loss" not in out["gae"]  # Table 2: GAE has no regulariser
    assert out["gae"]["recon_mse"] < out["vae_mlp"]["recon_mse"]
