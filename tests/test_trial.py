"""The trainable's Ray-free core: real training on MNIST, checkpoint/resume, divergence."""
from __future__ import annotations

import torch

from raygen.trial import Trial

BASE = {"dataset": "mnist", "split": "test", "batch_size": 64, "max_batches": 20, "eval_samples": 500}


def test_training_improves_reconstruction_on_real_mnist(data_root, tmp_path):
    t = Trial({**BASE, "model": "vae_mlp", "epochs": 3, "max_batches": 0}, data_root=str(data_root), out_dir=tmp_path)
    untrained = t.evaluate(images=False)["recon_mse"]
    for _ in range(3):
        result = t.train_epoch()
    assert result["status"] == "completed" and result["done"]
    assert result["recon_mse"] < 0.8 * untrained, (untrained, result["recon_mse"])
    assert (tmp_path / "samples.png").exists() and (tmp_path / "reconstructions.png").exists()
    assert result["train_split"] == "test[minus holdout 1000]" and result["eval_split"] == "test[holdout 1000]"


def test_resume_from_checkpoint_continues_exactly(data_root):
    cfg = {**BASE, "model": "gan_mlp", "epochs": 3}
    straight = Trial(cfg, data_root=str(data_root))
    for _ in range(2):
        straight.train_epoch()
    first = Trial(cfg, data_root=str(data_root))
    first.train_epoch()
    state = first.state()
    torch.manual_seed(1234)  # a restarted worker starts from other RNG states
    resumed = Trial(cfg, data_root=str(data_root))
    resumed.load_state(state)
    resumed.train_epoch()
    assert resumed.epoch == straight.epoch == 2
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    # the trial's own per-epoch record survives the restart: epoch 1 from the checkpoint, then 2
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    losses = lambda t: [(h["epoch"], h["loss"], h["d_loss"], h["g_loss"]) for h in t.history]
    assert losses(resumed) == losses(straight)  # the same losses as the uninterrupted run


def test_non_finite_loss_is_recorded_as_diverged(data_root):
    t = Trial({**BASE, "model": "vae_mlp", "epochs": 5, "nan_at_epoch": 2}, data_root=str(data_root))
    assert "status" not in t.train_epoch()
    r = t.train_epoch()
    assert r["status"] == "diverged" and r["diverged_epoch"] == 2 and r["done"] and "loss" in r["error"]
