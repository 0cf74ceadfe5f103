"""The data layer on the real MNIST test split (and the two download-free datasets)."""
from __future__ import annotations

import pytest
import torch

from raygen.data import load_data
from raygen.errors import DataMissingError, RaygenError


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


def test_auto_split_falls_back_to_test_with_a_recorded_holdout(data_root, capsys):
    d = load_data("mnist", split="auto", root=data_root, download=False)
    assert d.train_split == "test[minus holdout 1000]" and len(d.train) == 9000
    assert "split=auto" in capsys.readouterr().out


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
    assert c.train.x.shape == (50, 2) and torch.allclose(c.train.x[:, 1], torch.cos(torch.linspace(0, 6.2832, 50)), atol=1e-4)
