"""The data layer on the real MNIST test split (and the two download-free datasets)."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from raygen.core.errors import DataMissingError, RaygenError
from raygen.data import load_data


def test_mnist_test_split_is_the_published_one(data_root):
    d = load_data("mnist", split="test", eval_split="test", holdout=1000, root=data_root, download=False)
    assert d.train.x.shape == (9000, 1, 28, 28) and d.eval.x.shape == (1000, 1, 28, 28)
    assert d.train.x.dtype == torch.float32 and d.train.x.min() == 0 and d.train.x.max() == 1
    assert d.num_classes == 10 and d.eval_split == "test[holdout 1000]"
    labels = torch.cat([d.train.y, d.eval.y])
    assert torch.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_holdout_is_disjoint_from_training(data_root):
    d = load_data("mnist", split="test", holdout=500, root=data_root, download=False)
    train = {bytes(row.numpy()) for row in (d.train.x * 255).to(torch.uint8).view(len(d.train), -1)}
    ev = [bytes(row.numpy()) for row in (d.eval.x * 255).to(torch.uint8).view(len(d.eval), -1)]
    assert sum(e in train for e in ev) <= 5  # MNIST holds a handful of exact duplicate images


def test_scaling_to_the_model_range(data_root):
    d = load_data("mnist", split="test", root=data_root, data_range=(-1.0, 1.0), download=False)
    assert d.train.x.min() == -1 and d.train.x.max() == 1
    assert torch.allclose(d.to_unit(d.train.x).max(), torch.tensor(1.0))


def test_auto_split_falls_back_to_test_with_a_recorded_holdout(data_root, capsys, tmp_path):
    d = load_data("mnist", split="auto", root=data_root, download=False)
    assert d.train_split == "test[minus holdout 1000]" and len(d.train) == 9000
    assert "split=auto" in capsys.readouterr().out
    with pytest.raises(DataMissingError):  # neither split here: the error alone, no note of a fallback
        load_data("mnist", split="auto", root=tmp_path, download=False)
    assert "split=auto" not in capsys.readouterr().out


def test_batches_slice_a_permutation_without_repeats(data_root):
    d = load_data("mnist", split="test", root=data_root, download=False)
    g = torch.Generator().manual_seed(0)
    seen = torch.cat([x.view(len(x), -1).sum(1) for x, _ in d.train.batches(1000, g)])
    assert len(seen) == 9000
    first = next(d.train.batches(1000, torch.Generator().manual_seed(0)))[0]
    again = next(d.train.batches(1000, torch.Generator().manual_seed(0)))[0]
    other = next(d.train.batches(1000, torch.Generator().manual_seed(1)))[0]
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert len(list(d.train.batches(1000, g, max_batches=3))) == 3


def test_missing_data_names_dataset_folder_and_files(tmp_path):
    with pytest.raises(DataMissingError) as err:
        load_data("fashion_mnist", split="test", root=tmp_path, download=False)
    msg = str(err.value)
    assert "fashion_mnist" in msg and str(tmp_path / "FashionMNIST" / "raw") in msg
    assert "t10k-images-idx3-ubyte.gz" in msg and "--data-root" in msg


def test_unknown_dataset_and_split_are_clear_errors(data_root):
    with pytest.raises(RaygenError, match="Valid datasets: .*mnist"):
        load_data("mnits", root=data_root)
    with pytest.raises(RaygenError, match="split must be one of"):
        load_data("mnist", split="validation", root=data_root)


def test_digits_and_cosine_need_no_download(tmp_path):
    d = load_data("digits", split="train", root=tmp_path)
    assert d.train.x.shape[1:] == (1, 8, 8) and len(d.train) + len(d.eval) == 1797
    c = load_data("cosine", split="train", eval_split="train", root=tmp_path, data_range=None)
    assert c.train.x.shape == (50, 2)
    assert torch.allclose(c.train.x[:, 1], torch.cos(torch.linspace(0, 6.2832, 50)), atol=1e-4)


def test_image_grid_frames_only_the_flagged_images_in_red(tmp_path):
    from PIL import Image

    from raygen.models.figures import image_grid

    images = torch.full((6, 1, 4, 4), 0.5)
    image_grid(images, tmp_path / "g.png", nrow=3, frames=torch.tensor([False, True, False, False, False, True]))
    a = np.asarray(Image.open(tmp_path / "g.png").convert("RGB")).astype(int)
    assert a.shape == (2 * 6 + 2, 3 * 6 + 2, 3)
    red = (a[..., 0] == 255) & (a[..., 1] == 0) & (a[..., 2] == 0)
    # image i sits at top 2 + (i // 3) * 6, left 2 + (i % 3) * 6; its frame is the ring around it
    for i, framed in enumerate([False, True, False, False, False, True]):
        top, left = 2 + (i // 3) * 6, 2 + (i % 3) * 6
        ring = red[top - 1, left - 1:left + 5].all() and red[top + 4, left - 1:left + 5].all() \
            and red[top - 1:top + 5, left - 1].all() and red[top - 1:top + 5, left + 4].all()
        assert ring == framed
        assert not red[top:top + 4, left:left + 4].any()  # the image itself untouched
    assert red.sum() == 2 * 20  # two rings of 6x6 - 4x4 pixels, nothing else


def test_idx_files_read_with_numpy_match_torchvisions_reader(data_root):
    import tempfile

    from torchvision.datasets.mnist import read_sn3_pascalvincent_tensor

    from raygen.data.datasets import read_idx

    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        path = data_root / "MNIST" / "raw" / f"{stem}.gz"
        with tempfile.NamedTemporaryFile(suffix=".idx") as tmp:
            tmp.write(gzip.decompress(path.read_bytes()))
            tmp.flush()
            expected = read_sn3_pascalvincent_tensor(tmp.name, strict=False)
        assert torch.equal(read_idx(path), expected)


def test_a_truncated_or_foreign_data_file_is_named_with_the_fix(data_root, tmp_path):
    from raygen.data.datasets import read_idx

    good = (data_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    cases = {"cut.gz": good[: len(good) // 2], "garbage.gz": b"not gzip at all" * 10,
             "short": gzip.decompress(good)[:-100]}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(RaygenError, match=rf"dataset file {tmp_path / name} is damaged .* Fix: delete it"):
            read_idx(tmp_path / name)


def _fails_after_writing(folder_of):
    """A download that creates its folder and a partial file, then fails (as a dropped connection does)."""
    def fake(*args, **kwargs):
        if not kwargs.get("download", True):  # torchvision looks first, writing nothing
            raise RuntimeError("Dataset not found or corrupted")
        folder = folder_of(*args, **kwargs)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "partial.tmp").write_bytes(b"\0" * 10)
        raise OSError("connection reset by peer")
    return fake


@pytest.mark.parametrize("name", ["omniglot", "svhn", "fashion_mnist"])
def test_a_failed_download_leaves_the_data_root_as_it_found_it(tmp_path, monkeypatch, name):
    import torchvision.datasets as tvd
    import torchvision.datasets.utils as tvu

    from raygen.data import datasets

    root = tmp_path / "data"
    root.mkdir()
    (root / "mine.txt").write_text("the user's own file")
    monkeypatch.setattr(tvu, "download_url", _fails_after_writing(lambda url, folder, *a: Path(folder)))
    monkeypatch.setattr(tvd, "SVHN", _fails_after_writing(lambda folder, **kw: Path(folder)))
    monkeypatch.setattr(tvd, "FashionMNIST", _fails_after_writing(lambda r, **kw: Path(r) / "FashionMNIST" / "raw"))
    monkeypatch.setattr(datasets, "resolves", lambda host: True)
    with pytest.raises(DataMissingError, match="connection reset by peer"):
        load_data(name, split="test", root=root, download=True)
    assert sorted(p.name for p in root.iterdir()) == ["mine.txt"]
