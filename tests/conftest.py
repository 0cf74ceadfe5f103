"""Shared fixtures. Tests train on the real MNIST test split (``../shared/datasets``,
or ``$RAYGEN_TEST_DATA``); nothing here fakes MNIST."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "datasets"
# Below pytest's own limit per test (pyproject: timeout = 600), so a child that hangs is
# reported with its output instead of being cut off by pytest-timeout.
SUBPROCESS_TIMEOUT = 540
FAULTS_PLUGIN = REPO / "tests" / "plugins" / "faults.py"
# Small networks per model, for tests that build every model (the contract suite): Ko et al.
# 2024's protocol nets are 3.4M parameters, SAVAE's two phases several networks each.
TINY: dict[str, dict] = {
    **{name: {"hidden": (32, 32, 64)} for name in ("vae", "beta_vae", "info_vae", "wae", "ae", "rae_l2", "gae",
                                                   "gmvae", "vade", "vamp_vae", "vae_gan")},
    "savae": {"latent_dim": 4, "channels": (4, 8, 8), "hidden": (32, 16, 16), "cls_width": 16,
              "dis_channels": (4, 8, 8), "dis_hidden": (16, 16, 8, 8), "n_dis": 1, "phase1_epochs": 1,
              "phase1_max_batches": 2},
}

# Under pytest-xdist (pyproject: -n 2) each worker process computes on one core: two workers
# with two threads each would fight over this machine's two.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
torch.set_num_threads(1 if XDIST_WORKER else 2)
# Any Ray a test starts reuses this environment instead of rebuilding it from uv.lock
# (set before anything imports Ray, which reads it once).
os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = Path(os.environ.get("RAYGEN_TEST_DATA", SHARED_DATA))
    if not (root / "MNIST" / "raw").exists():
        pytest.fail(f"the MNIST test split is expected in {root}/MNIST/raw (set RAYGEN_TEST_DATA)")
    return root


@pytest.fixture
def faults(monkeypatch):
    """The fault-injecting test model ``faulty_vae_mlp`` (tests/plugins/faults.py), registered
    through ``$RAYGEN_PLUGINS`` in this process and in the sweeps and Ray workers the test starts."""
    monkeypatch.setenv("RAYGEN_PLUGINS", str(FAULTS_PLUGIN))


@pytest.fixture(scope="session")
def mnist_batch(data_root) -> torch.Tensor:
    """16 real MNIST test images in [0, 1], (16, 1, 28, 28)."""
    from raygen.data import load_data

    return load_data("mnist", split="test", root=data_root, download=False).train.x[:16].clone()


@pytest.fixture(autouse=True, scope="session")
def _metric_caches(tmp_path_factory):
    """One raygen cache per test run (also seen by the sweeps and Ray workers the tests start,
    through the environment, and by every xdist worker): the MNIST classifier is trained once
    (10-20 s) and shared.
    Inception weights are declared absent unless a test points somewhere else: on a
    machine that has them (or is online) every evaluation would otherwise run Inception on
    the CPU for minutes."""
    if XDIST_WORKER:  # shared by the run's workers (the caches take file locks)
        cache = tmp_path_factory.getbasetemp().parent / "raygen_cache"
        cache.mkdir(exist_ok=True)
    else:
        cache = tmp_path_factory.mktemp("raygen_cache")
    saved = {k: os.environ.get(k) for k in ("RAYGEN_CACHE", "RAYGEN_FID_WEIGHTS")}
    os.environ["RAYGEN_CACHE"] = str(cache)
    os.environ["RAYGEN_FID_WEIGHTS"] = str(cache / "absent" / "pt_inception-2015-12-05-6726825d.pth")
    yield cache
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def float64():
    """Double precision for the test (gradients compared by hand), the default restored after."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def pytest_collection_modifyitems(config, items):
    """Slow tests first (a stable sort: each group keeps its order). Under xdist the longest
    tests (real sweeps, 20-120 s each) then start early and the quick ones fill the workers' ends,
    instead of one worker running a two-minute sweep alone after the other has finished."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
