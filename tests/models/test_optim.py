"""FusedAdam (raygen/models/optim.py): torch.optim.Adam(fused=True)'s updates and state, bit for bit,
without the compiler hooks whose first call imports torch._dynamo (seconds per Ray worker)."""
from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch

from raygen.models.optim import FusedAdam

from conftest import REPO, SUBPROCESS_TIMEOUT


def test_the_same_updates_and_state_as_torch_fused_adam():
    torch.manual_seed(0)
    ours = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 1))
    theirs = copy.deepcopy(ours)
    o1 = FusedAdam(ours.parameters(), lr=1e-2, betas=(0.5, 0.99))
    o2 = torch.optim.Adam(theirs.parameters(), lr=1e-2, betas=(0.5, 0.99), fused=True)
    x = torch.randn(16, 5)
    for i in range(6):
        for net, opt in ((ours, o1), (theirs, o2)):
            opt.zero_grad()
            net(x * (i + 1)).pow(2).mean().backward()
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters()))
    s1, s2 = o1.state_dict(), o2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    assert all(torch.equal(s1["state"][i][k], s2["state"][i][k]) for i in s2["state"] for k in s2["state"][i])
    o3 = torch.optim.Adam(copy.deepcopy(ours).parameters(), lr=1e-2, fused=True)
    o3.load_state_dict(s1)  # a checkpoint of one loads into the other
    assert torch.equal(o3.state_dict()["state"][0]["exp_avg"], s1["state"][0]["exp_avg"])


PROBE = """
import sys, torch
from raygen.core.registry import MODELS
from raygen.engine.config import split_config
from raygen.engine.stacking import StackedTrial
from raygen.engine.trial import Trial
sys.path.insert(0, 'tests')
from conftest import TINY
for name in MODELS.names():
    _, cls, cfg = split_config({'model': name, **TINY.get(name, {})})
    model = cls(cfg, (1, 28, 28), num_classes=10)
    opts = model.configure_optimizers()
    x = torch.rand(8, 1, 28, 28)
    lo, hi = cfg.data_range
    model.train_step(x * (hi - lo) + lo, torch.arange(8) % 10, opts)
    [o.state_dict() for o in opts.values()]
cfg = {'model': 'vae_mlp', 'epochs': 1, 'max_batches': 2, 'eval_samples': 100, 'holdout': 100}
Trial(cfg, data_root=sys.argv[1]).fit()
StackedTrial([{**cfg, 'seed': s} for s in (0, 1)], data_root=sys.argv[1]).fit()
print('torch._dynamo' in sys.modules)
"""


@pytest.mark.slow  # a fresh Python process (torch's import) or a model trained end to end
def test_training_stacking_and_evaluating_never_import_torch_dynamo(data_root):
    out = subprocess.run([sys.executable, "-c", PROBE, str(data_root)], cwd=REPO, capture_output=True, text=True,
                         timeout=SUBPROCESS_TIMEOUT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout[-2000:]


def test_a_weight_kept_in_transposed_memory_takes_the_same_steps():
    """A stacked model's (K, out, in) weights live in (K, in, out) memory (raygen.engine.batched):
    FusedAdam steps them in memory order, with the same numbers as a contiguous copy."""
    torch.manual_seed(0)
    w = torch.randn(3, 16, 8)  # a multiple of the kernel's vector width: no element in a scalar tail
    a = torch.nn.Parameter(w.clone())
    b = torch.nn.Parameter(w.transpose(1, 2).contiguous().transpose(1, 2))
    assert not b.is_contiguous() and torch.equal(a, b)
    oa, ob = FusedAdam([a], lr=1e-2), FusedAdam([b], lr=1e-2)
    for i in range(4):
        g = torch.randn(3, 16, 8) * (i + 1)
        a.grad, b.grad = g.clone(), g.transpose(1, 2).contiguous().transpose(1, 2)  # each in its layout
        oa.step(), ob.step()
    assert torch.equal(a, b) and torch.equal(oa.state[a]["exp_avg_sq"], ob.state[b]["exp_avg_sq"])
    assert ob.state[b]["exp_avg"].stride() == b.stride()
