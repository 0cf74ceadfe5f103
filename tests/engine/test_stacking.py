"""Stacked trials train K configurations as one vectorised model and give the numbers the
unstacked trials give (up to float rounding), on the real cosine points and MNIST."""
from __future__ import annotations

import math

import pytest
import torch

from benchmarks.table3 import vae_config
from raygen.core.errors import RaygenError
from raygen.engine.stacking import StackedTrial, stackable
from raygen.engine.trial import Trial

# sweeps/gae_cosine.yaml's configuration, shortened to 30 epochs
COSINE = {"dataset": "cosine", "split": "auto", "eval_samples": 50, "epochs": 30, "batch_size": 50, "arch": "mlp",
          "hidden": [256], "act": "relu", "latent_dim": 1, "output": "linear", "recon": "mse",
          "recon_reduction": "mean", "lr": 1e-3}
COSINE_MODELS = {"vae_mlp": {"model": "vae_mlp"}, "gae": {"model": "gae", "sampler": "gaussian", "delta": 0.0}}
# sweeps/gae_table3.yaml's vae on MNIST (test split here), a few batches; epochs beyond those
# trained, so no end-of-training evaluation (the classifier metrics take seconds each)
TABLE3 = vae_config(split="test", max_batches=2, epochs=10)
NOT_COMPARED = ("epoch_time_s", "train_time_s", "stacked", "resumed_from_epoch")


def losses(t: Trial) -> list[dict[str, float]]:
    """A trial's per-epoch numbers except timings (and time-like evaluation columns)."""
    return [{k: v for k, v in h.items() if k not in NOT_COMPARED and not k.endswith("_s")} for h in t.history]


def assert_close_numbers(a: list[dict], b: list[dict], rtol=1e-4, atol=1e-5) -> None:
    assert len(a) == len(b)
    for ha, hb in zip(a, b):
        assert ha.keys() == hb.keys()
        for k in ha:
            assert math.isclose(ha[k], hb[k], rel_tol=rtol, abs_tol=atol) or (ha[k] != ha[k] and hb[k] != hb[k]), \
                (k, ha["epoch"], ha[k], hb[k])


def assert_close_weights(a: Trial, b: Trial, atol=1e-4, rtol=1e-4) -> None:
    """Every tensor within ``atol`` and its norm's ``rtol``: Adam's step on a near-zero gradient
    follows the gradient's rounding, so single weights may differ by up to lr per step."""
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        if torch.is_tensor(sa[k]) and sa[k].numel():
            va, vb = sa[k].double(), sb[k].double()
            assert (va - vb).abs().max() <= atol and (va - vb).norm() <= rtol * max(va.norm(), 1e-12), k


def unstacked(configs, data_root=None, epochs=None) -> list[Trial]:
    """Each config built and trained in turn, as one worker would (a Trial seeds the global RNGs)."""
    trials = []
    for c in configs:
        trials.append(t := Trial(c, data_root=data_root))
        for _ in range(epochs or t.cfg.epochs):
            if t.train_epoch().get("done"):
                break
        t.torch_rng_after = torch.get_rng_state()  # the global stream, before the next trial reseeds it
    return trials


@pytest.mark.parametrize("model", sorted(COSINE_MODELS))
def test_stacked_cosine_trials_match_the_unstacked_ones_briefly(model):
    configs = [{**COSINE, **COSINE_MODELS[model], "epochs": 5, "seed": s} for s in range(2)]
    alone = unstacked(configs)
    stack = StackedTrial(configs)
    last = stack.fit()
    for a, b, r in zip(alone, stack.members, last):
        assert r["status"] == "completed" and r["epoch"] == 5 and r["stacked"] == 2
        assert_close_numbers(losses(a), losses(b))  # every epoch's losses and the final metrics
        assert_close_weights(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(COSINE_MODELS))
def test_stacked_cosine_trials_match_the_unstacked_ones(model, tmp_path):
    configs = [{**COSINE, **COSINE_MODELS[model], "seed": s} for s in range(5)]
    alone = unstacked(configs)
    stack = StackedTrial(configs, out_dirs=[tmp_path, None, None, None, None])  # images: one member's suffice
    last = stack.fit()
    assert stack.done
    for a, b, r in zip(alone, stack.members, last):
        assert r["status"] == "completed" and r["epoch"] == 30 and r["stacked"] == 5
        assert_close_numbers(losses(a), losses(b))  # every epoch's losses and the final metrics
        assert_close_weights(a, b)
    assert (tmp_path / "cosine.png").exists()  # images through the member's own code path
    assert len({round(t.history[-1]["loss"], 6) for t in stack.members}) == 5  # five seeds, five trainings


def test_stacked_table3_vae_matches_over_seeds_and_beta(data_root):
    configs = [{**TABLE3, "seed": 0}, {**TABLE3, "seed": 1, "beta": 4.0}]
    alone = unstacked(configs, str(data_root), epochs=2)
    stack = StackedTrial(configs, data_root=str(data_root))
    for _ in range(2):
        results = stack.train_epoch()
    assert [r["epoch"] for r in results] == [2, 2] and not stack.done
    state = stack.state()  # writes the stacked weights back into the members' models
    assert all(torch.equal(a.torch_rng_after, m["torch_rng"]) for a, m in zip(alone, state["members"]))
    for a, b in zip(alone, stack.members):
        assert_close_numbers(losses(a), losses(b))
        assert_close_weights(a, b, atol=1e-3)  # one Adam step (lr 1e-3) at most


def test_stacked_info_vae_draws_its_prior_noise_per_member(data_root):
    """InfoVAE draws twice per step (reparameterisation, then prior codes): both per member."""
    cfg = {"model": "info_vae", "hidden": [32, 32, 64], "dataset": "mnist", "split": "test", "limit": 256,
           "batch_size": 32, "max_batches": 2, "epochs": 10}
    configs = [{**cfg, "seed": 0}, {**cfg, "seed": 1, "info_lambda": 10.0}]
    alone = unstacked(configs, str(data_root), epochs=2)
    stack = StackedTrial(configs, data_root=str(data_root))
    stack.train_epoch(), stack.train_epoch()
    state = stack.state()
    for a, b in zip(alone, stack.members):
        # lambda 1000 times an MMD near zero: its rounding shows at 1e-4
        assert_close_numbers(losses(a), losses(b), rtol=1e-3)
        assert_close_weights(a, b, atol=1e-3, rtol=1e-3)
    # each member's noise stream advanced exactly as its unstacked trial's did
    assert all(torch.equal(a.torch_rng_after, m["torch_rng"]) for a, m in zip(alone, state["members"]))


def test_a_stackable_model_that_measures_its_steps_says_so():
    """Stacked training calls ``observe_step`` only for models that declare it (GAE)."""
    from raygen.core.registry import MODELS
    from raygen.models.base import GenerativeModel

    for name, cls in MODELS.items():
        if cls.stackable and cls.observe_step is not GenerativeModel.observe_step:
            assert cls.stack_observes_steps, f"{name} overrides observe_step without stack_observes_steps"
    assert MODELS.get("gae").stack_observes_steps and not MODELS.get("vae").stack_observes_steps


def test_stackable_refuses_what_cannot_share_a_model():
    seeds = [{**COSINE, "model": "vae_mlp", "seed": s} for s in range(2)]
    assert stackable(seeds) is None
    assert stackable([{**seeds[0], "beta": 0.5}, seeds[1]]) is None  # a loss weight may differ
    gan = [{"model": "gan_dcgan", "seed": s} for s in range(2)]
    assert stackable(gan) == "gan_dcgan alternates two optimizers (discriminator, generator)"
    why = stackable([seeds[0], {**seeds[1], "lr": 1e-2}])
    assert why.startswith("lr differs (0.001 vs 0.01)") and "seed, beta" in why
    assert stackable([seeds[0], {**seeds[1], "model": "ae"}]).startswith("model differs")
    assert "vae_gan" in stackable([{"model": "vae_gan"}] * 2)
    with pytest.raises(RaygenError, match="cannot be stacked: hidden differs"):
        StackedTrial([seeds[0], {**seeds[1], "hidden": [128]}])


def test_batch_norm_networks_are_refused(data_root):
    cfg = {"model": "vae_conv", "arch": "resnet", "dataset": "mnist", "split": "test", "limit": 64}
    with pytest.raises(RaygenError, match="BatchNorm"):
        StackedTrial([cfg, {**cfg, "seed": 1}], data_root=str(data_root))


def test_state_round_trip_continues_identically_and_a_member_resumes_alone():
    configs = [{**COSINE, "model": "vae_mlp", "seed": s} for s in range(3)]
    straight = StackedTrial(configs)
    for _ in range(3):
        straight.train_epoch()
    first = StackedTrial(configs)
    first.train_epoch(), first.train_epoch()
    state = first.state()
    # each member's state is what its unstacked trial holds after the same two epochs
    alone = unstacked(configs[1:2], epochs=2)[0].state()
    mine = state["members"][1]
    assert mine.keys() == alone.keys() and mine["epoch"] == 2
    assert torch.equal(mine["batch_rng"], alone["batch_rng"]) and torch.equal(mine["torch_rng"], alone["torch_rng"])
    for k, v in alone["model"].items():
        assert torch.allclose(mine["model"][k], v, atol=1e-5), k
    for i, st in alone["opts"]["opt"]["state"].items():
        assert all(torch.allclose(mine["opts"]["opt"]["state"][i][k], v, atol=1e-5) for k, v in st.items())
    torch.manual_seed(1234)  # a restarted worker starts from other RNG states
    resumed = StackedTrial(configs)
    resumed.load_state(state)
    resumed.train_epoch()
    straight.state(), resumed.state()  # weights written back into the members
    for a, b in zip(straight.members, resumed.members):
        assert losses(a) == losses(b)  # the same bits as the uninterrupted stack
        assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())
    solo = Trial(configs[1])
    solo.load_state(mine)
    solo.train_epoch()
    assert_close_numbers(losses(solo), losses(straight.members[1]), rtol=1e-5)
    assert_close_weights(solo, straight.members[1], atol=1e-5)


def test_a_diverging_member_stops_alone(faults):
    configs = [{**COSINE, "model": "faulty_vae_mlp", "epochs": 4, "seed": s} for s in range(3)]
    configs[1]["nan_at_epoch"] = 2
    stack = StackedTrial(configs)
    stack.train_epoch()
    second = stack.train_epoch()
    assert second[1]["status"] == "diverged" and second[1]["diverged_epoch"] == 2 and second[1]["done"]
    assert "status" not in second[0] and "status" not in second[2]
    assert stack.train_epoch()[1] is None and stack.active == [0, 2]
    last = stack.train_epoch()
    assert stack.done and [r and r["status"] for r in last] == ["completed", None, "completed"]
    alone = unstacked(configs)
    for a, b in zip(alone, stack.members):
        assert_close_numbers(losses(a), losses(b))
        assert_close_weights(a, b)
    assert stack.train_epoch() == [None, None, None]


def test_gae_members_stop_at_their_own_delta_epoch():
    configs = [{**COSINE, "model": "gae", "sampler": "gaussian", "delta": 0.3, "seed": s} for s in range(5)]
    alone = unstacked(configs)
    stack = StackedTrial(configs)
    last = stack.fit()
    epochs = [t.epoch for t in alone]
    assert len(set(epochs)) > 1 and max(epochs) < 30  # they converge, at different epochs
    assert [r["epoch"] for r in last] == epochs and all(r["delta_reached"] for r in last)
    for a, b in zip(alone, stack.members):
        assert_close_numbers(losses(a), losses(b))
        assert_close_weights(a, b)
