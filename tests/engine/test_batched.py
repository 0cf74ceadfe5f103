"""Stacks of fully connected networks train through batched layers (raygen.engine.batched):
every stackable model's loss code holds for a leading member axis, so a batched stack gives
the unstacked trials' numbers, as the vmap path does; other networks keep vmap."""
from __future__ import annotations

import pytest
import torch
from engine.test_stacking import assert_close_numbers, assert_close_weights, losses, unstacked
from torch import nn

from raygen.core.registry import MODELS
from raygen.engine.batched import StackedLinear, batchable, batched_copy, io_layout
from raygen.engine.stacking import StackedTrial

# vae_conv with arch mlp would be vae_mlp's network; its own conv network keeps vmap (below)
STACKABLE = sorted(n for n, cls in MODELS.items() if cls.stackable and n != "vae_conv")
# small MLPs on 256 MNIST images, two short epochs
SMALL = {"arch": "mlp", "hidden": [32, 16], "dataset": "mnist", "split": "test", "limit": 256, "batch_size": 32,
         "max_batches": 3, "epochs": 10, "latent_dim": 3}


def member_configs(name: str) -> list[dict]:
    """Three members of ``name``: other seeds and, for each loss weight it stacks, another value."""
    base = {"model": name, **SMALL}
    second = {**base, "seed": 1}
    for key in MODELS.get(name).stack_weights:
        second[key] = 0.5 * float(getattr(MODELS.get(name).Config(), key)) + 0.25
    return [{**base, "seed": 0}, second, {**base, "seed": 2}]


@pytest.mark.parametrize("name", STACKABLE)
def test_every_stackable_model_trains_batched_as_it_does_alone(name, data_root):
    configs = member_configs(name)
    stack = StackedTrial(configs, data_root=str(data_root))
    assert stack.batched and isinstance(stack.net.get_submodule("encoder.1"), StackedLinear)
    stack.train_epoch(), stack.train_epoch()
    state = stack.state()
    alone = unstacked(configs, str(data_root), epochs=2)
    for a, b in zip(alone, stack.members):
        assert_close_numbers(losses(a), losses(b), rtol=1e-3)
        assert_close_weights(a, b, atol=1e-3, rtol=1e-3)
    # each member's noise stream advanced exactly as its unstacked trial's did
    assert all(torch.equal(a.torch_rng_after, m["torch_rng"]) for a, m in zip(alone, state["members"]))


def test_the_vmap_path_gives_the_batched_paths_numbers(data_root):
    configs = member_configs("info_vae")  # two draws per step, three loss weights
    batched = StackedTrial(configs, data_root=str(data_root))
    vmapped = StackedTrial(configs, data_root=str(data_root), vmap=True)
    assert batched.batched and not vmapped.batched and vmapped.net is None
    for _ in range(2):
        batched.train_epoch(), vmapped.train_epoch()
    batched.state(), vmapped.state()
    for a, b in zip(batched.members, vmapped.members):
        assert_close_numbers(losses(a), losses(b), rtol=1e-3)
        assert_close_weights(a, b, atol=1e-3, rtol=1e-3)


def test_conv_networks_keep_vmap(data_root):
    cfg = {"model": "vae_conv", "dataset": "mnist", "split": "test", "limit": 64, "batch_size": 32, "epochs": 10}
    stack = StackedTrial([cfg, {**cfg, "seed": 1}], data_root=str(data_root))
    assert batchable(stack.base) == "ConvEncoder" and not stack.batched and stack.net is None
    assert stack.train_epoch()[1]["epoch"] == 1


def test_a_batched_copy_runs_each_member_as_its_own_network():
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2)) for _ in range(3)]
    assert batchable(nets[0]) is None and batchable(nn.Sequential(nn.Conv2d(1, 1, 3))) == "Conv2d"
    params = {n: nn.Parameter(io_layout(torch.stack([dict(m.named_parameters())[n] for m in nets]))
                              if n.endswith("weight") else torch.stack([dict(m.named_parameters())[n] for m in nets]))
              for n, _ in nets[0].named_parameters()}
    net = batched_copy(nets[0], params)
    assert all(p is params[n] for n, p in net.named_parameters()) and net.member_dims == 1
    x = torch.randn(3, 4, 2, 3)  # (K, B, *item)
    out = net(x)
    assert out.shape == (3, 4, 2)
    for k, m in enumerate(nets):
        assert torch.allclose(out[k], m(x[k]), atol=1e-6)
    out.sum().backward()  # the gradient arrives in the weights' own (K, in, out) memory: no copy
    w = params["1.weight"]
    assert w.grad.stride() == w.stride() and not w.is_contiguous() and w.transpose(1, 2).is_contiguous()
