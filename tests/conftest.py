"""Shared fixtures. Tests train on the real MNIST test split (``../shared/datasets``,
or ``$RAYGEN_TEST_DATA``); nothing here fakes MNIST."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "datasets"

torch.set_num_threads(2)
# Any Ray a test starts reuses this environment instead of rebuilding it from uv.lock
# (set before anything imports Ray, which reads it once).
os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = Path(os.environ.get("RAYGEN_TEST_DATA", SHARED_DATA))
    if not (root / "MNIST" / "raw").exists():
        pytest.fail(f"the MNIST test split is expected in {root}/MNIST/raw (set RAYGEN_TEST_DATA)")
    return root


@pytest.fixture(scope="session")
def mnist_batch(data_root) -> torch.Tensor:
    """16 real MNIST test images in [0, 1], (16, 1, 28, 28)."""
    from raygen.data import load_data

    return load_data("mnist", split="test", root=data_root, download=False).train.x[:16].clone()
