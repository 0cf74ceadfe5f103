"""The scoring functions on known inputs, and the disk cache under concurrency."""
from __future__ import annotations

import math
import multiprocessing as mp
import os
import time

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance

from raygen.core.diskcache import cached, entry
from raygen.metrics import scores


def correlated(n: int, d: int, shift: float, seed: int) -> torch.Tensor:
    """n draws of one d-dimensional distribution (shifted by ``shift``); ``seed`` picks the draws."""
    w = torch.randn(d, d, generator=torch.Generator().manual_seed(d)) / d**0.5
    z = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    return torch.relu(z @ w + shift)  # non-negative, like pool3 / ReLU features


@pytest.mark.parametrize("n, d", [(2000, 256), (150, 256)])  # full-rank, and singular covariances (n < d)
def test_frechet_distance_equals_pytorch_fid(n, d):
    a, b = correlated(n, d, 0.0, 0), correlated(n, d, 0.2, 1)
    (m1, s1), (m2, s2) = scores.gaussian_stats(a), scores.gaussian_stats(b)
    assert np.allclose(s1.numpy(), np.cov(a.double().numpy(), rowvar=False))
    ours = scores.frechet_distance(m1, s1, m2, s2)
    theirs = calculate_frechet_distance(m1.numpy(), s1.numpy(), m2.numpy(), s2.numpy())
    assert ours > 0 and abs(ours - theirs) <= 1e-6 * abs(theirs), (ours, theirs)
    from_features = scores.feature_frechet(a, m2, s2)  # (D, n) root of the features when n < D
    assert abs(from_features - theirs) <= 1e-6 * abs(theirs), (from_features, theirs)
    assert abs(scores.frechet_distance(m1, s1, m1, s1)) < 1e-6 * ours


def test_inception_score_bounds():
    confident = torch.eye(10).repeat(50, 1)  # every class equally often, each sample certain
    assert scores.inception_score(confident) == pytest.approx(10.0, rel=1e-6)
    assert scores.inception_score(torch.full((500, 10), 0.1)) == pytest.approx(1.0, abs=1e-9)
    collapsed = torch.eye(10)[torch.zeros(500, dtype=torch.long)]
    assert scores.inception_score(collapsed) == pytest.approx(1.0, abs=1e-6)


def test_class_coverage_sees_mode_collapse():
    uniform = torch.eye(10).repeat(100, 1)
    assert scores.class_coverage(uniform) == (10, pytest.approx(math.log(10)))
    labels = torch.cat([torch.zeros(990, dtype=torch.long), torch.arange(10)])  # 1 class + strays
    hit, entropy = scores.class_coverage(torch.eye(10)[labels])
    assert hit == 1 and entropy < 0.1


def test_kid_is_near_zero_for_one_distribution_and_grows_with_the_gap():
    real = correlated(1500, 64, 0.0, 0)
    kid = lambda fake: scores.kid(real, fake, subsets=10, subset_size=500)
    same = kid(correlated(1500, 64, 0.0, 2))
    near, far = kid(correlated(1500, 64, 0.1, 1)), kid(correlated(1500, 64, 0.5, 1))
    assert scores.kid(real[:500], correlated(500, 64, 0.1, 1), subsets=3) == pytest.approx(near, rel=0.5)
    assert abs(same) < 0.1 * near and near < far


def test_precision_recall_tell_fidelity_from_diversity():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(1000, 8, generator=g)
    assert scores.precision_recall(real, torch.randn(1000, 8, generator=g)) > (0.8, 0.8)
    mode = real[real[:, 0] > 1.0]  # a sliver of the real data: faithful, not diverse
    mode = mode[torch.randint(len(mode), (1000,), generator=g)] + 0.01 * torch.randn(1000, 8, generator=g)
    p, r = scores.precision_recall(real, mode)
    assert p > 0.9 and r < 0.35, (p, r)
    p, r = scores.precision_recall(real, torch.randn(1000, 8, generator=g) + 20)
    assert p == 0 and r == 0


# --- the cache -------------------------------------------------------------------------


def _slow_compute(path: str, log: str) -> None:
    def compute():
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(1.0)
        return {"value": torch.arange(3)}

    assert torch.equal(cached(path, compute)["value"], torch.arange(3))


def test_concurrent_processes_compute_a_cache_entry_once(tmp_path):
    path = entry(tmp_path, "reference", "mnist", "test[holdout 1000]", "tag", 100)
    assert path.parent == tmp_path / "reference" and "/" not in path.name and "[" not in path.name
    log = tmp_path / "computed.log"
    ctx = mp.get_context("fork")  # fast; the children only save and load a small tensor
    procs = [ctx.Process(target=_slow_compute, args=(str(path), str(log))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert len(log.read_text().split()) == 1  # one process computed, two waited and read it
    names = sorted(f.name for f in path.parent.iterdir())
    assert names == [path.name, path.name + ".lock", path.name + ".sig"]  # no temp files left


def test_an_unreadable_cache_entry_is_recomputed(tmp_path):
    path = entry(tmp_path, "classifiers", "mnist")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a file")
    assert cached(path, lambda: {"ok": 1}) == {"ok": 1}
    assert cached(path, lambda: {"ok": 2}) == {"ok": 1}  # now a hit


def test_sharpness_matches_numpy_and_falls_with_blur():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(8, 1, 28, 28, generator=g) > 0.7).float()  # hard-edged strokes
    a = x.numpy()
    energy = (np.abs(np.diff(a, axis=3)).mean() + np.abs(np.diff(a, axis=2)).mean()) / 2
    assert float(scores.edge_energy(x)) == pytest.approx(energy, rel=1e-6)
    assert scores.sharpness(x, x) == pytest.approx(1.0)
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)
    more = torch.nn.functional.avg_pool2d(blurred, 3, stride=1, padding=1)
    assert 0 < scores.sharpness(more, x) < scores.sharpness(blurred, x) < 0.8
    assert scores.sharpness(torch.full_like(x, 0.5), x) == 0.0
