"""Zemouri 2020's Semi-Supervised Adversarial VAE on the real MNIST test split: both phases,
the phase-1 cache (trained once, loaded by the next trial, which then continues exactly
as the first did), checkpoint/resume across the phase switch, semi-supervised labels,
the per-trial images, and clear errors."""
from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np
import pytest
import torch
from PIL import Image

from raygen.core.diskcache import load_or_build
from raygen.core.errors import RaygenError
from raygen.engine.config import split_config
from raygen.engine.trial import Trial
from raygen.models import losses
from raygen.models.savae import SAVAE, semi_supervised_labels

from conftest import TINY

# Small networks, 1,200 images, 3 phase-1 epochs, 3 phase-2 batches: seconds on a CPU.
BASE = {"model": "savae", "dataset": "mnist", "split": "test", "limit": 1200, "batch_size": 64, "max_batches": 3,
        "epochs": 1, "eval_samples": 300, **TINY["savae"], "channels": (8, 16, 16), "hidden": (128, 64, 32),
        "cls_width": 32, "latent_dim": 8, "phase1_epochs": 3, "phase1_max_batches": 0, "phase1_batch_size": 64,
        "phase1_lr": 3e-3}


@pytest.fixture(autouse=True)
def one_thread():
    """These networks are small: a second thread's synchronisation costs more than it saves
    (25x slower measured with 2 threads on a loaded 2-core machine). Trials under Ray run
    with one thread per CPU of the trial anyway."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def trial(tmp_path, data_root, name: str, **over) -> Trial:
    return Trial({**BASE, **over}, data_root=str(data_root), out_dir=tmp_path / name, sweep_dir=tmp_path / "sweep")


def params(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items() if torch.is_tensor(v)}  # not extra state


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow  # a fresh Python process (torch's import) or a model trained end to end
def test_phase1_then_phase2_trains_only_decoder_and_discriminator(tmp_path, data_root):
    t = trial(tmp_path, data_root, "a", gamma=0.1, beta=0.01)
    m = t.model
    init = {n: params(getattr(m, n)) for n in ("encoder", "classifier", "decoder", "discriminator")}
    r = t.train_epoch()
    assert r["status"] == "completed" and m.phase == 2
    assert r["phase1_cached"] is False and r["phase1_time_s"] > 0
    # Phase 1 learnt something: the classifier beats chance (0.1) on held-out images.
    assert r["classifier_acc_phase1"] > 0.3, r["classifier_acc_phase1"]  # 0.67 when written
    (cache,) = (tmp_path / "sweep" / "cache" / "savae_phase1").glob("*.pt")
    phase1 = torch.load(cache, weights_only=True)
    # Phase 2 left encoder and classifier exactly as phase 1 made them (frozen, batch norm
    # statistics included) and trained the decoder and discriminator.
    assert not same(init["encoder"], phase1["encoder"])
    assert same(params(m.encoder), phase1["encoder"]) and same(params(m.classifier), phase1["classifier"])
    assert not same(params(m.decoder), init["decoder"]) and not same(params(m.discriminator), init["discriminator"])
    assert {"rec_loss", "adv_loss", "latent_loss", "dis_loss"} <= set(r)
    assert 0 <= r["latent_class_consistency"] <= 1 and 0 <= r["recon_class_acc"] <= 1 and r["recon_mse"] > 0


@pytest.mark.slow  # trains both phases end to end
def test_second_trial_loads_phase1_and_continues_exactly_like_the_first(tmp_path, data_root):
    first = trial(tmp_path, data_root, "a")
    r1 = first.train_epoch()
    second = trial(tmp_path, data_root, "b")
    r2 = second.train_epoch()
    assert (r1["phase1_cached"], r2["phase1_cached"]) == (False, True)
    assert r1["phase1_key"] == r2["phase1_key"] and r1["classifier_acc_phase1"] == r2["classifier_acc_phase1"]
    # Same seed, same phase 1, RNG forked around it: phase 2 is bit-identical.
    assert same(params(first.model), params(second.model))
    assert r1["loss"] == r2["loss"]
    # beta/gamma share phase 1; the latent size and the label fraction do not.
    assert trial(tmp_path, data_root, "c", beta=0.5, gamma=0.0).model.phase1_spec(first.data, 0) == \
        first.model.phase1_spec(first.data, 0)
    for other in ({"latent_dim": 4}, {"label_fraction": 0.1}, {"seed": 1}):
        t = trial(tmp_path, data_root, "d", **other)
        assert t.model.phase1_spec(t.data, t.cfg.seed) != first.model.phase1_spec(first.data, 0), other


@pytest.mark.slow  # trains both phases end to end
def test_resume_after_the_phase_switch_continues_exactly(tmp_path, data_root):
    cfg = {"epochs": 2}
    straight = trial(tmp_path, data_root, "a", **cfg)
    for _ in range(2):
        r_straight = straight.train_epoch()
    first = trial(tmp_path, data_root, "b", **cfg)
    first.train_epoch()
    state = first.state()
    torch.manual_seed(1234)
    resumed = trial(tmp_path, data_root, "c", **cfg)
    assert resumed.model.phase == 1
    resumed.load_state(state)
    assert resumed.model.phase == 2 and not any(p.requires_grad for p in resumed.model.encoder.parameters())
    r = resumed.train_epoch()
    assert same(params(resumed.model), params(straight.model))
    # The last result (the results.parquet row) still says how phase 1 went.
    assert r["classifier_acc_phase1"] == r_straight["classifier_acc_phase1"] and "phase1_cached" in r


@pytest.mark.slow  # trains both phases end to end
def test_trial_writes_the_fixed_40_images_and_the_2d_latent_figures(tmp_path, data_root):
    t = trial(tmp_path, data_root, "a", latent_dim=2, phase1_epochs=1)  # pictures, not quality: one epoch
    r = t.train_epoch()
    out = tmp_path / "a"
    for key in ("fixed_inputs_png", "recon_fixed_png", "latent_scatter_png", "class_decodes_png"):
        assert (out / r[key]).exists(), key
    assert Image.open(out / r["recon_fixed_png"]).size == (20 * 30 + 2, 2 * 30 + 2)  # 2 rows of 20 (28 px + padding)
    assert Image.open(out / r["class_decodes_png"]).size == (10 * 30 + 2, 10 * 30 + 2)  # a row per digit
    fixed = torch.from_numpy(np.asarray(Image.open(out / r["fixed_inputs_png"]).convert("L"), dtype=np.float32))
    expected = (t.data.eval.x[0, 0] * 255).round()
    assert torch.allclose(fixed[2:30, 2:30], expected, atol=1)  # the first eval image, top left
    t100 = trial(tmp_path, data_root, "b", phase1_epochs=1)
    r100 = t100.train_epoch()
    assert "latent_scatter_png" not in r100 and (tmp_path / "b" / "recon_fixed.png").exists()


def test_semi_supervised_labels_keep_a_fixed_seeded_fraction():
    y = torch.arange(1000) % 10
    a, b, c = (semi_supervised_labels(y, 0.1, s) for s in (0, 0, 1))
    assert (a >= 0).sum() == 100 and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a[a >= 0], y[a >= 0])
    assert torch.equal(semi_supervised_labels(y, 1.0, 0), y)


def test_unlabelled_items_add_nothing_to_the_classification_loss():
    logits = torch.randn(6, 10, requires_grad=True)
    y = torch.tensor([3, -1, 5, -1, -1, 0])
    loss = losses.masked_cross_entropy(logits, y)
    labelled = torch.nn.functional.cross_entropy(logits[y >= 0], y[y >= 0])
    assert torch.allclose(loss, labelled)
    loss.backward()
    assert (logits.grad[y < 0] == 0).all() and (logits.grad[y >= 0] != 0).any()
    none = losses.masked_cross_entropy(torch.randn(3, 10), torch.full((3,), -1))
    assert none.item() == 0


def _build_slowly(path: str, marker: str) -> bool:
    def build():
        with open(marker, "a") as f:
            f.write("built\n")
        time.sleep(1.0)
        return {"w": torch.ones(3)}

    state, cached = load_or_build(path, build)
    assert torch.equal(state["w"], torch.ones(3))
    return cached


@pytest.mark.slow  # trains both phases end to end
def test_concurrent_trials_build_the_cache_once(tmp_path):
    path, marker = tmp_path / "c" / "x.pt", tmp_path / "built.txt"
    with mp.get_context("spawn").Pool(3) as pool:
        cached = pool.starmap(_build_slowly, [(str(path), str(marker))] * 3)
    assert sorted(cached) == [False, True, True]
    assert marker.read_text() == "built\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.pt", "x.pt.lock", "x.pt.sig"]  # no temporary left


@pytest.mark.parametrize("over, message", [
    ({"label_fraction": 0}, "label_fraction must be a number > 0 and <= 1"),
    ({"kl_reduction": "max"}, "kl_reduction must be one of mean, sum"),
    ({"alpha": [1, 1, 1, 1, 1, 1, 1]}, "alpha needs 1 to 6 weights"),
    ({"n_dis": 0}, "n_dis must be a number >= 1"),
    ({"phase1_batch_size": 0}, "phase1_batch_size must be a number >= 1"),
    ({"adam_beta1": 5}, "adam_beta1 must be a number >= 0 and <= 0.999"),
    ({"phase1_lr": -1}, "phase1_lr must be a number > 0"),
    ({"channels": [0, 8, 8]}, "channels must be a number >= 1"),
])
def test_bad_settings_are_clear_errors(over, message):
    with pytest.raises(RaygenError, match=message):  # the settings' bounds, or the model's own checks
        _, cls, cfg = split_config({"model": "savae", **over})
        cls(cfg, (1, 28, 28))


def test_point_data_is_a_clear_error():
    _, cls, cfg = split_config({"model": "savae"})
    with pytest.raises(RaygenError, match="needs image data"):
        cls(cfg, (2,))


def test_the_adversarial_loss_is_a_mean_over_the_batch_of_one_score_per_image():
    g = torch.Generator().manual_seed(0)
    p, q = torch.rand(16, 1, generator=g), torch.rand(16, 1, generator=g)
    expected = float(np.mean((p.numpy() - q.numpy()) ** 2))
    assert losses.paired_squares(p, q).item() == pytest.approx(expected, rel=1e-6)


def test_the_discriminator_trains_five_times_per_decoder_step_by_default():
    assert SAVAE.Config().n_dis == 5  # WGAN's n_critic, which the paper follows without a number


def test_eq11_sums_the_squared_difference_over_the_classes():
    a, b = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]), torch.tensor([[0.1, 0.1, 0.8], [0.1, 0.1, 0.8]])
    assert float(losses.squared_norm(a, b)) == pytest.approx((0.36 + 0.01 + 0.49) / 2)


def test_the_discriminator_draws_fresh_batches_from_a_stream_its_state_keeps(tmp_path, data_root):
    t = trial(tmp_path, data_root, "stream")
    x = t.data.train.x[:16]
    saved = {k: v.clone() if torch.is_tensor(v) else v for k, v in t.model.state_dict().items()}
    first, second = t.model.fresh_batch(x), t.model.fresh_batch(x)
    assert first.shape == x.shape and not torch.equal(first, second)  # a new batch for every update
    t.model.load_state_dict(saved)  # a checkpoint resumes the stream where it was
    assert torch.equal(t.model.fresh_batch(x), first)
