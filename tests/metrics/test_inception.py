"""pytorch-fid's Inception path: the real architecture (untrained weights: the pretrained
file is not on every machine) for shapes, resizing and channels; where the weights come
from and the message when they are absent; the family end to end from a weights file."""
from __future__ import annotations

from unittest import mock

import pytest
import torch
import torch.nn.functional as F

from raygen.core.errors import RaygenError
from raygen.engine.trial import Trial
from raygen.metrics import inception as fid


@pytest.fixture(scope="module")
def net():
    return fid.InceptionExtractor(None)  # architecture only: never used for a metric


def test_the_network_is_pytorch_fids_fid_inception(net):
    from pytorch_fid.inception import FIDInceptionA, FIDInceptionE_1, FIDInceptionE_2, InceptionV3

    assert isinstance(net.blocks, InceptionV3) and net.blocks.resize_input and net.blocks.normalize_input
    kinds = [type(m) for m in net.blocks.modules()]
    assert kinds.count(FIDInceptionA) == 3 and FIDInceptionE_1 in kinds and FIDInceptionE_2 in kinds
    assert net.fc.in_features == 2048 and net.fc.out_features == 1008


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to float rounding (untrained activations are tiny, so relative)."""
    return bool((a - b).norm() <= 1e-4 * b.norm())


def test_features_shapes_resizing_and_channels(net):
    g = torch.Generator().manual_seed(0)
    gray = torch.rand(2, 1, 28, 28, generator=g)
    feats, logits = net.extract(gray)
    assert feats.shape == (2, 2048) and logits.shape == (2, 1008) and torch.isfinite(feats).all()
    rgb = gray[:1].repeat(1, 3, 1, 1)
    bilinear, nearest, clamped = (F.interpolate(x, size=(299, 299), mode=mode, **kw) for x, mode, kw in (
        (rgb, "bilinear", {"align_corners": False}),  # pytorch-fid's resize
        (rgb, "nearest", {}),
        ((gray[:1] * 2 - 0.5).clamp(0, 1).repeat(1, 3, 1, 1), "bilinear", {"align_corners": False})))
    f_bilinear, f_nearest, f_clamped = net.extract(torch.cat([bilinear, nearest, clamped]))[0]  # 299x299: kept
    assert close(f_bilinear, feats[0])  # grayscale -> 3 equal channels, resized inside as pytorch-fid does
    assert not close(f_nearest, feats[0])  # another resize gives other features: the check above can fail
    assert close(net.extract(gray[:1] * 2 - 0.5)[0][0], f_clamped)  # inputs are clamped to [0, 1]
    assert net.extract(torch.rand(1, 3, 32, 32, generator=g))[0].shape == (1, 2048)  # CIFAR-sized RGB
    with pytest.raises(RaygenError, match="1 or 3"):
        net.extract(torch.rand(2, 2, 28, 28))


def test_absent_weights_say_where_raygen_looked_and_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.delenv(fid.ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(fid.WeightsMissing) as err:
        fid.resolve_weights(download=False)
    msg = str(err.value)
    assert "RAYGEN_FID_WEIGHTS" in msg and str(tmp_path / "torch" / "hub" / "checkpoints") in msg and fid.FILE in msg
    monkeypatch.setenv(fid.ENV, str(tmp_path / "nope.pth"))
    with pytest.raises(fid.WeightsMissing, match="RAYGEN_FID_WEIGHTS names .*nope.pth, which does not exist"):
        fid.resolve_weights()
    hub = tmp_path / "torch" / "hub" / "checkpoints" / fid.FILE
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"")
    monkeypatch.delenv(fid.ENV)
    assert fid.resolve_weights(download=False) == hub  # the torch hub cache, where pytorch-fid keeps them
    assert fid.resolve_weights(str(hub)) == hub  # the fid_weights setting


def write_weights(path):
    """A file in the pretrained file's exact format (pytorch-fid's network, strict keys),
    holding untrained weights: to drive the loading path end to end in a test."""
    import pytorch_fid.inception as pfi
    from torchvision.models.inception import Inception3

    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(Inception3, "load_state_dict", lambda self, *a, **k: None):
        torch.save(pfi.fid_inception_v3().state_dict(), path)


def test_the_inception_family_runs_end_to_end_from_a_weights_file(tmp_path, data_root):
    weights = tmp_path / fid.FILE
    write_weights(weights)
    cfg = {"model": "vae_mlp", "dataset": "mnist", "split": "test", "epochs": 1, "max_batches": 2,
           "eval_samples": 4, "fid_weights": str(weights)}
    trial = Trial(cfg, data_root=str(data_root))
    assert trial.evaluate(images=False).get("fid_recon") is None  # a second Inception pass: only on request
    trial = Trial({**cfg, "inception_recon": True}, data_root=str(data_root))
    r = trial.evaluate(images=False)
    assert r["metric_errors"] is None, r["metric_errors"]
    for k in ("fid", "inception_score", "fid_recon", "inception_kid", "inception_precision", "inception_recall"):
        assert isinstance(r[k], float), k
    assert r["fid"] > 0 and 1 <= r["inception_score"] <= 1008
    assert r["fid_samples"] == 4 and r["fid_reference"] == "mnist/test[holdout 1000] (4 images)"
    assert "pytorch-fid InceptionV3 pool3" in r["fid_extractor"]

    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(RaygenError, match="not pytorch-fid's"):
        fid.load(str(tmp_path / "other.pth"), "cpu")


@pytest.mark.skipif(not fid.hub_path().is_file(), reason="pytorch-fid's Inception weights are not on this machine")
def test_real_inception_fid_of_mnist_halves_is_small_and_grows_with_noise(data_root, monkeypatch):
    from raygen.core.registry import DATASETS
    from raygen.metrics import scores
    from raygen.metrics.evaluate import extract

    monkeypatch.delenv(fid.ENV, raising=False)  # the session declares them absent; here they are real
    net = fid.load("", "cpu")
    x, _ = DATASETS.get("mnist")(data_root, "test", False)
    a, b = x[:200], x[200:400]
    stats = lambda imgs: scores.gaussian_stats(extract(net, imgs, 50)[0])
    ma, sa = stats(a)
    near = scores.frechet_distance(ma, sa, *stats(b))
    far = scores.frechet_distance(ma, sa, *stats((b + 0.3 * torch.randn_like(b)).clamp(0, 1)))
    assert near < far


def test_the_weights_url_is_pytorch_fids():
    from pytorch_fid.inception import FID_WEIGHTS_URL

    assert fid.FID_WEIGHTS_URL == FID_WEIGHTS_URL
