"""Zemouri 2020's extra datasets: Omniglot (28x28 release) and Caltech 101 Silhouettes. Their
files are absent here, so: the one clear error, and the readers on small files written in
the published layout (MATLAB column-major 28x28 rows; the keys the releases use)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.io import savemat

from raygen.core.errors import DataMissingError
from raygen.data import load_data


@pytest.mark.parametrize("name, folder, file, url", [
    ("omniglot", "omniglot", "chardata.mat", "yburda/iwae"),
    ("caltech101_silhouettes", "caltech101_silhouettes", "caltech101_silhouettes_28_split1.mat",
     "people.cs.umass.edu/~marlin"),
])
def test_missing_files_name_dataset_folder_file_and_source(tmp_path, name, folder, file, url):
    with pytest.raises(DataMissingError) as err:
        load_data(name, split="test", root=tmp_path, download=False)
    msg = str(err.value)
    assert f"dataset {name!r}" in msg and str(tmp_path / folder) in msg and file in msg and url in msg
    assert "--data-root" in msg


def column_major(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) -> (N, 784) rows in MATLAB's column-major order."""
    return images.transpose(0, 2, 1).reshape(len(images), 784)


def marked(n: int) -> np.ndarray:
    """n blank images; image i has one lit pixel at (row i, column 2 * i)."""
    x = np.zeros((n, 28, 28), dtype=np.float64)
    for i in range(n):
        x[i, i, 2 * i] = 1.0
    return x


def test_omniglot_reads_the_28x28_release_layout(tmp_path):
    (tmp_path / "omniglot").mkdir()
    train, test = marked(5), marked(3)
    onehot = lambda labels: np.eye(50)[labels].T
    savemat(tmp_path / "omniglot" / "chardata.mat",
            {"data": column_major(train).T, "target": onehot([0, 7, 49, 7, 3]),
             "testdata": column_major(test).T, "testtarget": onehot([1, 2, 3])})
    d = load_data("omniglot", split="train", eval_split="test", root=tmp_path, download=False)
    assert d.train.x.shape == (5, 1, 28, 28) and d.eval.x.shape == (3, 1, 28, 28)
    assert torch.equal(d.train.x[:, 0], torch.from_numpy(train).float())  # rows, columns the right way round
    assert d.train.y.tolist() == [0, 7, 49, 7, 3] and d.eval.y.tolist() == [1, 2, 3]
    assert d.num_classes == 50


def test_caltech_silhouettes_trains_on_train_plus_validation(tmp_path):
    (tmp_path / "caltech101_silhouettes").mkdir()
    x = marked(9)
    savemat(tmp_path / "caltech101_silhouettes" / "caltech101_silhouettes_28_split1.mat",
            {"train_data": column_major(x[:4]), "train_labels": np.array([[1], [2], [101], [5]]),
             "val_data": column_major(x[4:6]), "val_labels": np.array([[3], [3]]),
             "test_data": column_major(x[6:]), "test_labels": np.array([[1], [50], [101]])})
    d = load_data("caltech101_silhouettes", split="train", eval_split="test", root=tmp_path, download=False)
    assert len(d.train) == 6 and len(d.eval) == 3  # the paper's 6,364 = 4,100 train + 2,264 validation
    assert torch.equal(d.train.x[:, 0], torch.from_numpy(x[:6]).float())
    assert d.train.y.tolist() == [0, 1, 100, 4, 2, 2] and d.eval.y.tolist() == [0, 49, 100]
    assert d.num_classes == 101
