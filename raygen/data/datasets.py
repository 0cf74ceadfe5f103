"""Dataset loaders, registered by name. Each ``loader(root, split, download)`` returns
images as float tensors in [0, 1], (N, C, H, W) (points: (N, D)), and integer labels
(N,). Loaders keep the real download path (torchvision) and, when files are absent and
cannot be fetched, raise the one ``missing`` error: dataset, folder, files, how to fix.
"""
from __future__ import annotations

import contextlib
import functools
import gzip
import math
import shutil
import socket
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from raygen.core.errors import DataMissingError, RaygenError
from raygen.core.registry import DATASETS


def dataset(name: str, shape: tuple[int, ...], classes: int):
    """Register a loader under ``name`` with its items' shape and class count, known before any
    file is read (so a sweep's configs can be checked against the data before it starts)."""
    def add(loader):
        loader.shape, loader.num_classes = shape, classes
        return DATASETS.register(name)(loader)
    return add


def missing(dataset: str, folder: Path, files: list[str], hint: str = "") -> DataMissingError:
    """The one error for absent data: dataset, folder, expected files, how to fix."""
    return DataMissingError(
        f"dataset {dataset!r}: files not found in {folder} (expected: {', '.join(files)}). "
        f"{hint + ' ' if hint else ''}Fix: connect to the internet so they can be downloaded, "
        f"or copy them there, or point --data-root / RAYGEN_DATA_ROOT at a folder "
        f"that holds them."
    )


# --- MNIST-format datasets (IDX files, torchvision layout) -------------------------

_IDX = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def damaged(path: Path, why: str) -> RaygenError:
    return RaygenError(f"dataset file {path} is damaged ({why}). Fix: delete it (it is downloaded again when "
                       f"online) or replace it with an intact copy.")


def read_idx(path: Path) -> torch.Tensor:
    """An IDX file (LeCun's MNIST format; gzipped or not) as a tensor, read with numpy: its
    header's shape must account for every byte, so a truncated or foreign file is named."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # truncated gzip, not gzip at all, unreadable
        raise damaged(path, f"{type(exc).__name__}: {exc}") from None
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] not in IDX_TYPES:
        raise damaged(path, "not an IDX file")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise damaged(path, "its header is cut short")
    dims = struct.unpack(f">{ndim}i", raw[4:4 + 4 * ndim])
    dtype = np.dtype(IDX_TYPES[raw[2]])
    data = raw[4 + 4 * ndim:]
    if len(data) != math.prod(dims) * dtype.itemsize:
        expected = math.prod(dims) * dtype.itemsize
        raise damaged(path, f"{len(data):,} bytes of data where its header says {expected:,}")
    return torch.from_numpy(np.frombuffer(data, dtype).reshape(dims).astype(dtype.newbyteorder("=")))


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    return None


# Where torchvision downloads them from: when the host's name does not resolve (offline), no
# download can work, and importing torchvision (seconds: it pulls in torch._dynamo) is skipped.
_HOSTS = {"MNIST": "ossci-datasets.s3.amazonaws.com",
          "FashionMNIST": "fashion-mnist.s3-website.eu-central-1.amazonaws.com"}


@contextlib.contextmanager
def tidy_on_failure(*paths: Path):
    """What a download creates among ``paths`` (folders or files absent before it) is removed
    when it fails: a failed download leaves the data root as it found it."""
    new = [p for p in paths if not p.exists()]
    try:
        yield
    except BaseException:
        for p in reversed(new):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists():
                p.unlink()
        raise


@functools.cache
def resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def _mnist_like(name: str, tv_class: str, root: Path, split: str, download: bool):
    folder = root / tv_class / "raw"
    stems = _IDX[split]
    paths = [_find(folder, s) for s in stems]
    if None in paths and download and not resolves(_HOSTS[tv_class]):
        raise missing(name, folder, [s + ".gz" for s in stems],
                      f"Download failed ({_HOSTS[tv_class]} does not resolve: offline?).")
    if None in paths and download:
        import torchvision.datasets as tvd

        try:  # the real download path: torchvision fetches and verifies the files
            with tidy_on_failure(root, root / tv_class):
                getattr(tvd, tv_class)(str(root), train=(split == "train"), download=True)
        except Exception as exc:  # offline, mirror down, disk full...
            raise missing(name, folder, [s + ".gz" for s in stems], f"Download failed ({exc}).") from None
        paths = [_find(folder, s) for s in stems]
    if None in paths:
        raise missing(name, folder, [s + ".gz" for s in stems])
    images = read_idx(paths[0]).float().div_(255.0).unsqueeze(1)  # (N, 1, 28, 28)
    labels = read_idx(paths[1]).long()
    return images, labels


@dataset("mnist", shape=(1, 28, 28), classes=10)
def mnist(root: Path, split: str, download: bool = True):
    return _mnist_like("mnist", "MNIST", root, split, download)


@dataset("fashion_mnist", shape=(1, 28, 28), classes=10)
def fashion_mnist(root: Path, split: str, download: bool = True):
    return _mnist_like("fashion_mnist", "FashionMNIST", root, split, download)


# --- datasets that need no download ------------------------------------------------


@dataset("digits", shape=(1, 8, 8), classes=10)
def digits(root: Path, split: str, download: bool = True):
    """scikit-learn's 8x8 digits (1,797 images, 0..16 grey levels). No official split:
    the first 80% (fixed order) is ``train``, the rest ``test``."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).div_(16.0).unsqueeze(1)  # (N, 1, 8, 8)
    y = torch.tensor(d.target, dtype=torch.long)
    cut = int(0.8 * len(x))
    return (x[:cut], y[:cut]) if split == "train" else (x[cut:], y[cut:])


@dataset("cosine", shape=(2,), classes=1)
def cosine(root: Path, split: str, download: bool = True):
    """Ko et al. 2024 section 4.1: 50 equally spaced points of a truncated cosine in 2-D.

    The paper gives neither the range nor the scale; we take one period,
    t in [0, 2*pi], points (t / pi - 1, cos t) so both coordinates lie in [-1, 1].
    Both splits are the same 50 points (the experiment reconstructs its training set).
    """
    t = torch.linspace(0.0, 2.0 * math.pi, 50)
    x = torch.stack([t / math.pi - 1.0, torch.cos(t)], dim=1)  # (50, 2)
    return x, torch.zeros(50, dtype=torch.long)




# --- torchvision datasets stored in their own formats ------------------------------


def _torchvision(name: str, make, folder: Path, files: list[str], download: bool, creates: tuple[Path, ...] = ()):
    """``make(download)`` builds the torchvision dataset; absent files -> ``missing``. A failed
    download removes what it created (``folder`` and ``creates``)."""
    try:
        return make(False)
    except (RuntimeError, FileNotFoundError, OSError):
        if not download:
            raise missing(name, folder, files) from None
    try:
        with tidy_on_failure(*creates, folder):
            return make(True)
    except Exception as exc:  # offline, mirror down, disk full...
        raise missing(name, folder, files, f"Download failed ({type(exc).__name__}: {exc}).") from None


@dataset("cifar10", shape=(3, 32, 32), classes=10)
def cifar10(root: Path, split: str, download: bool = True):
    from torchvision.datasets import CIFAR10

    folder = root / "cifar-10-batches-py"
    files = ["data_batch_1 ... data_batch_5", "test_batch", "batches.meta"]
    ds = _torchvision("cifar10", lambda dl: CIFAR10(str(root), train=split == "train", download=dl), folder, files,
                      download, creates=(root, root / "cifar-10-python.tar.gz"))
    x = torch.from_numpy(np.asarray(ds.data)).permute(0, 3, 1, 2).float().div_(255.0)  # (N, 3, 32, 32)
    return x.contiguous(), torch.tensor(ds.targets, dtype=torch.long)


@dataset("svhn", shape=(3, 32, 32), classes=10)
def svhn(root: Path, split: str, download: bool = True):
    from torchvision.datasets import SVHN

    folder = root / "svhn"
    ds = _torchvision("svhn", lambda dl: SVHN(str(folder), split=split, download=dl), folder,
                      [f"{split}_32x32.mat"], download, creates=(root,))
    x = torch.from_numpy(np.asarray(ds.data)).float().div_(255.0)  # (N, 3, 32, 32)
    return x.contiguous(), torch.from_numpy(np.asarray(ds.labels)).long()


# --- 28x28 releases stored as MATLAB files (Zemouri 2020's Omniglot and Caltech 101) -------


def _mat_release(name: str, folder: Path, filename: str, url: str, md5: str | None, download: bool) -> dict:
    """Read ``folder/filename`` with SciPy, downloading it first (torchvision's
    ``download_url``, which checks the MD5 when one is known) when absent."""
    from scipy.io import loadmat

    path = folder / filename
    if not path.exists() and download:
        from torchvision.datasets.utils import download_url

        try:
            with tidy_on_failure(folder.parent, folder, path):
                download_url(url, str(folder), filename, md5)
        except Exception as exc:  # offline, mirror down, disk full...
            why = f"Download from {url} failed ({type(exc).__name__}: {exc})."
            raise missing(name, folder, [filename], why) from None
    if not path.exists():
        raise missing(name, folder, [filename], f"It is published at {url}.")
    return loadmat(str(path))


def _images_28(rows: np.ndarray) -> torch.Tensor:
    """(N, 784) rows of a 28x28 MATLAB release -> (N, 1, 28, 28) in [0, 1]. The rows are
    column-major images (MATLAB's order; the IWAE and VampPrior loaders read them with
    order='F'), hence the transpose."""
    x = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32)).view(-1, 28, 28).transpose(1, 2)
    return x.clamp(0, 1).unsqueeze(1).contiguous()


@dataset("omniglot", shape=(1, 28, 28), classes=50)
def omniglot(root: Path, split: str, download: bool = True):
    """Omniglot as Zemouri 2020 uses it (section 4.1): 28x28 images, 50 classes (the alphabets),
    24,345 training and 8,070 test images. That is exactly Burda et al.'s 28x28 release
    (``chardata.mat``, the IWAE paper's split), which we read, rather than torchvision's
    105x105 ``Omniglot`` resized: torchvision's background/evaluation split has disjoint
    alphabets (no class of the test images is seen in training), so a classifier-structured
    latent space could not be evaluated on it. Keys: ``data``/``testdata`` (784, N),
    ``target``/``testtarget`` (50, N) one-hot alphabets."""
    folder = root / "omniglot"
    raw = _mat_release("omniglot", folder, "chardata.mat",
                       "https://raw.githubusercontent.com/yburda/iwae/master/datasets/OMNIGLOT/chardata.mat",
                       "21ecaf34373511aa7691cf2e0802aa3d", download)
    x_key, y_key = ("data", "target") if split == "train" else ("testdata", "testtarget")
    x = _images_28(raw[x_key].T)
    target = np.asarray(raw[y_key])
    y = target.argmax(0) if target.ndim == 2 and target.shape[0] > 1 else target.ravel() - target.min()
    return x, torch.from_numpy(np.asarray(y)).long()


@dataset("caltech101_silhouettes", shape=(1, 28, 28), classes=101)
def caltech101_silhouettes(root: Path, split: str, download: bool = True):
    """Caltech 101 Silhouettes, the 28x28 release of Marlin et al. (2010)
    (``caltech101_silhouettes_28_split1.mat``; torchvision has no loader for it). Zemouri 2020
    (section 4.1) counts 6,364 training and 2,307 test images: the release's train (4,100)
    and validation (2,264) parts together are our ``train``. Labels 1..101 become 0..100.
    Pixels are kept as released (no inversion)."""
    folder = root / "caltech101_silhouettes"
    raw = _mat_release("caltech101_silhouettes", folder, "caltech101_silhouettes_28_split1.mat",
                       "https://people.cs.umass.edu/~marlin/data/caltech101_silhouettes_28_split1.mat", None, download)
    parts = ("train", "val") if split == "train" else ("test",)
    x = _images_28(np.concatenate([raw[f"{p}_data"] for p in parts]))
    y = np.concatenate([np.asarray(raw[f"{p}_labels"]).ravel() for p in parts]) - 1
    return x, torch.from_numpy(y).long()
