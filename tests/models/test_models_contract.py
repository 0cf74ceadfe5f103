"""One contract, every registered model (diffusers-style): a tiny config, two training
steps, sampling, reconstruction, a state-dict round trip, and a resume from a
checkpoint that continues exactly as the uninterrupted run."""
from __future__ import annotations

import math

import pytest
import torch

from raygen.core.registry import MODELS
from raygen.engine.config import split_config

from conftest import TINY

SHAPE = (1, 28, 28)


# "model@arch": a registered model on another architecture (the architecture sweep
# runs the conv VAE on Zemouri 2020's residual nets).
ARCH_CASES = ["vae_conv@resnet"]


def build(case: str, **overrides):
    name, _, arch = case.partition("@")
    arch_override = {"arch": arch} if arch else {}
    _, cls, cfg = split_config({"model": name, **TINY.get(name, {}), **arch_override, **overrides})
    torch.manual_seed(0)
    return cls(cfg, SHAPE, num_classes=10)


def to_range(model, x01: torch.Tensor) -> torch.Tensor:
    lo, hi = model.cfg.data_range
    return x01 * (hi - lo) + lo


@pytest.fixture(params=MODELS.names() + ARCH_CASES)
def name(request):
    return request.param


def test_registered_models_cover_the_seeds():
    assert {"gan_dcgan", "gan_mlp", "vae_conv", "vae_mlp", "savae"} <= set(MODELS.names())


def test_two_train_steps_give_finite_losses(name, mnist_batch):
    model = build(name)
    opts = model.configure_optimizers()
    x, y = to_range(model, mnist_batch[:8]), torch.arange(8) % 10
    before = {k: v.clone() for k, v in model.state_dict().items() if torch.is_tensor(v)}  # not extra state
    for _ in range(2):
        out = model.train_step(x, y, opts)
        assert out and all(math.isfinite(float(v)) for v in out.values()), out
    changed = [k for k, v in before.items() if v.dtype.is_floating_point and not torch.equal(v, model.state_dict()[k])]
    assert changed, "two optimiser steps left every parameter unchanged"


def test_optimizers_are_pytorchs_fused_adam_on_the_cpu(name):
    opts = build(name).configure_optimizers()
    assert opts and all(isinstance(o, torch.optim.Adam) and o.defaults["fused"] for o in opts.values())


def test_samples_have_the_data_shape_and_range(name):
    model = build(name).eval()
    lo, hi = model.cfg.data_range
    s = model.sample(5)
    assert s.shape == (5, *SHAPE)
    assert torch.isfinite(s).all() and s.min() >= lo and s.max() <= hi


def test_reconstructions_have_the_data_shape_and_range(name, mnist_batch):
    model = build(name).eval()
    if not model.has_encoder:
        pytest.skip(f"{name} has no encoder")
    x = to_range(model, mnist_batch[:4])
    lo, hi = model.cfg.data_range
    r = model.reconstruct(x)
    assert r.shape == x.shape and r.min() >= lo and r.max() <= hi
    assert model.encode(x).shape == (4, model.cfg.latent_dim)


def test_state_dict_round_trip_gives_the_same_outputs(name, mnist_batch):
    a = build(name)
    opts = a.configure_optimizers()
    a.train_step(to_range(a, mnist_batch[:8]), torch.zeros(8, dtype=torch.long), opts)  # move off init
    b = build(name)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    torch.manual_seed(1)
    sa = a.sample(4)
    torch.manual_seed(1)
    sb = b.sample(4)
    assert torch.equal(sa, sb)
    if a.has_encoder:
        x = to_range(a, mnist_batch[:4])
        assert torch.equal(a.reconstruct(x), b.reconstruct(x))


def trial_config(case: str) -> dict:
    name, _, arch = case.partition("@")
    tiny = {k: list(v) if isinstance(v, tuple) else v for k, v in TINY.get(name, {}).items()}
    # epochs beyond the two run here: no end-of-training evaluation, only training state
    return {"model": name, **tiny, **({"arch": arch} if arch else {}), "dataset": "mnist", "split": "test",
            "limit": 256, "batch_size": 32, "max_batches": 2, "epochs": 10}


def test_resume_after_an_epoch_gives_the_same_next_epoch(name, data_root):
    from raygen.engine.trial import Trial

    cfg = trial_config(name)
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
    tensors = lambda t: {k: v for k, v in t.model.state_dict().items() if torch.is_tensor(v)}
    a, b = tensors(straight), tensors(resumed)  # (extra state holds bookkeeping such as timings)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the trial's own per-epoch record survives the restart: epoch 1 from the checkpoint, then 2
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    losses = lambda t: [{k: v for k, v in h.items() if not k.endswith("_s") and k != "resumed_from_epoch"}
                        for h in t.history]
    assert losses(resumed) == losses(straight)  # the same numbers as the uninterrupted run


def test_every_numeric_setting_declares_its_allowed_values():
    """A bad number is one line before anything runs, never a failure in every trial a minute in."""
    import dataclasses
    import typing

    from raygen.core.settings import rules
    from raygen.engine.config import TrainConfig

    unbounded = []
    for name, config in [("trainer", TrainConfig), *((n, cls.Config) for n, cls in MODELS.items())]:
        hints = typing.get_type_hints(config)
        for f in dataclasses.fields(config):
            numeric = any(t in (int, float) for t in (hints[f.name], *typing.get_args(hints[f.name])))
            if numeric and not rules(config, f.name):
                unbounded.append(f"{name}.{f.name}")
    assert unbounded == []


@pytest.mark.slow  # bf16 convolutions of tiny batches are slow on a CPU (oneDNN reorders): ~30 s in all
def test_bf16_steps_train_as_fp32_steps_do(name, mnist_batch):
    """``precision: bf16`` (engine/precision.py) on every model: the same steps from the same start
    move the loss as far as fp32's do, and an autoencoder's end near fp32's (a bf16 forward on stale
    weights, autocast's cache kept across steps, moves nothing)."""
    from raygen.engine import precision

    seen = {}
    for p in ("fp32", "bf16"):
        model = build(name)
        opts = model.configure_optimizers()
        x, y = to_range(model, mnist_batch[:16]), torch.arange(16) % 10
        torch.manual_seed(1)
        seen[p] = []
        for _ in range(5):
            with precision.steps(p, torch.device("cpu")):
                out = model.train_step(x, y, opts)
            assert all(v.dtype == torch.float32 and math.isfinite(float(v)) for v in out.values()), (p, out)
            seen[p].append(float(out["loss"]))
    fp32, bf16 = seen["fp32"], seen["bf16"]
    assert max(bf16) - min(bf16) > 0.25 * (max(fp32) - min(fp32)), seen
    if model.has_encoder:  # a GAN's alternation on one batch is chaotic: its trajectories part
        assert abs(bf16[-1] - fp32[-1]) < 0.25 * abs(fp32[-1] - fp32[0]) + 0.002 * abs(fp32[-1]), seen
