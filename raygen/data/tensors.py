"""Datasets -> tensors on the trial's device, loaded once, batched by index slicing.

Every loader returns images as float tensors in [0, 1] with shape (N, C, H, W) (or
points as (N, D) for the cosine curve) plus integer labels. ``load_data`` then
scales them into the model's range once, moves them to the device once, and carves
the evaluation set. ``TensorData.batches`` shuffles with a seeded generator and
slices: no DataLoader, no per-batch host-to-device copies.

Data root: ``--data-root`` > ``$RAYGEN_DATA_ROOT`` > ``~/.cache/raygen/data``. The
layout is torchvision's (``<root>/MNIST/raw/t10k-images-idx3-ubyte.gz``), so a
folder torchvision downloaded into works as is.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from raygen.core.errors import DataMissingError, RaygenError
from raygen.core.registry import DATASETS

SPLITS = ("train", "test")
AUTO = "auto"  # train split if present or downloadable, else the test split with a holdout


def data_root(cli_value: str | os.PathLike | None = None) -> Path:
    if cli_value:
        return Path(cli_value).expanduser().resolve()
    if os.environ.get("RAYGEN_DATA_ROOT"):
        return Path(os.environ["RAYGEN_DATA_ROOT"]).expanduser().resolve()
    return Path.home() / ".cache" / "raygen" / "data"


# --- tensors on the device ---------------------------------------------------------


@dataclass
class TensorData:
    x: torch.Tensor  # (N, *shape), in the model's range, on the trial's device
    y: torch.Tensor  # (N,) labels (zeros where a dataset has none)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def batches(self, batch_size: int, generator: torch.Generator, max_batches: int | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled mini-batches by index slicing on the device (last partial batch dropped
        unless the set is smaller than one batch)."""
        for idx in self.batch_indices(batch_size, generator, max_batches):
            yield self.x[idx], self.y[idx]

    def batch_indices(self, batch_size: int, generator: torch.Generator, max_batches: int | None = None
                      ) -> Iterator[torch.Tensor]:
        """The indices of ``batches``' mini-batches, each (B,) on the device."""
        n = len(self.x)
        perm = torch.randperm(n, generator=generator).to(self.x.device)
        stop = max(n - n % batch_size, min(n, batch_size))
        for i, start in enumerate(range(0, stop, batch_size)):
            if max_batches is not None and i >= max_batches:
                return
            yield perm[start:start + batch_size]


@dataclass
class Data:
    name: str
    train: TensorData
    eval: TensorData  # never trained on
    num_classes: int
    data_range: tuple[float, float] | None  # None: the data's own values (cosine)
    eval_split: str  # e.g. "test" or "test[holdout 1000]": recorded with every metric
    train_split: str  # the split actually trained on (``auto`` resolved), recorded likewise
    # Training images held out to choose between configurations (``validation``), never
    # trained on, so that the evaluation split stays untouched by the choice.
    valid: TensorData | None = None
    valid_split: str = ""

    def validation_view(self) -> Data:
        """This data with the validation images as its evaluation split."""
        return dataclasses.replace(self, eval=self.valid, eval_split=self.valid_split, valid=None, valid_split="")

    @property
    def shape(self) -> tuple[int, ...]:
        return self.train.shape

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Map tensors in the model's range back to [0, 1] (for metrics and images)."""
        if self.data_range is None:
            return x
        lo, hi = self.data_range
        return (x - lo) / (hi - lo)


def carve(x: torch.Tensor, y: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    """(rest x, rest y, carved x, carved y): the last ``n`` items of a fixed permutation."""
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[perm], y[perm]
    return x[:-n], y[:-n], x[-n:], y[-n:]


def load_data(name: str, *, split: str = "train", eval_split: str = "test", holdout: int = 1000,
              root: Path | str | None = None, device: str | torch.device = "cpu",
              data_range: tuple[float, float] | None = (0.0, 1.0), download: bool = True,
              limit: int | None = None, quiet: bool = False, validation: int = 0) -> Data:
    """Load ``name`` once, scale from [0, 1] to ``data_range`` (None: keep the values, for
    point data such as ``cosine``), move to ``device``.

    When ``split == eval_split`` (e.g. training on MNIST's test split here, where the
    training split is absent) the last ``holdout`` images of a fixed permutation are
    carved off for evaluation, so evaluation images are never trained on.
    ``split="auto"`` trains on the training split when it is present or downloadable and
    otherwise falls back, loudly and on the record (``Data.train_split``), to the test
    split with a holdout: so the same sweep runs online at full scale and offline here.
    ``limit`` keeps the first N training images (smoke runs). ``validation`` carves that many
    training images (a fixed permutation's last) off as ``Data.valid``, to choose on.
    """
    for s, key, ok in ((split, "split", (*SPLITS, AUTO)), (eval_split, "eval_split", SPLITS)):
        if s not in ok:
            raise RaygenError(f"{key} must be one of {', '.join(ok)}, got {s!r}")
    loader = DATASETS.get(name)
    root = data_root(root)
    xy, fell_back = None, False
    if split == AUTO:
        try:
            xy, split = loader(root, "train", download), "train"
        except DataMissingError:
            split, fell_back = eval_split, True
    x, y = xy if xy is not None else loader(root, split, download)
    if fell_back and not quiet:  # said once the split it falls back on is there
        print(f"note: {name}: no training split here; split=auto -> training on the {eval_split!r} "
              f"split minus a {holdout}-image holdout, evaluating on the holdout", flush=True)
    train_label = split
    if split == eval_split:
        if name == "cosine":  # the experiment evaluates on its own 50 training points
            ex, ey, label = x, y, split
        else:
            if not 0 < holdout < len(x):
                raise RaygenError(f"holdout must be between 1 and {len(x) - 1} for {name}/{split}, got {holdout}")
            x, y, ex, ey = carve(x, y, holdout, seed=0)
            label = f"{split}[holdout {holdout}]"
            train_label = f"{split}[minus holdout {holdout}]"
    else:
        ex, ey = loader(root, eval_split, download)
        label = eval_split
    if limit is not None:
        x, y = x[:limit], y[:limit]
    vx = vy = None
    if validation:
        if not 0 < validation < len(x):
            raise RaygenError(f"validation must be between 1 and {len(x) - 1} for {name}/{split}, got {validation}")
        x, y, vx, vy = carve(x, y, validation, seed=1)
    lo, hi = data_range if data_range is not None else (0.0, 1.0)
    scale = lambda t: t * (hi - lo) + lo
    train = TensorData(scale(x).contiguous().to(device), y.to(device))
    ev = TensorData(scale(ex).contiguous().to(device), ey.to(device))
    num_classes = int(max(int(y.max()), int(ey.max())) + 1)
    data = Data(name, train, ev, num_classes, data_range, label, train_label)
    if vx is not None:
        data.valid = TensorData(scale(vx).contiguous().to(device), vy.to(device))
        data.valid_split, data.train_split = f"{train_label}[validation {validation}]", \
            f"{train_label}[minus validation {validation}]"
    return data
