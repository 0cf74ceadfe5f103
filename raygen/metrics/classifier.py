"""The domain classifier behind the offline metrics: a small CNN per dataset, trained by
raygen once and cached, so classifier-FID / IS / coverage / KID / precision-recall work on
any machine, with no download (the usual "LeNet FID" of MNIST papers, made explicit).

It trains on the split the data layer would train a model on (``split=auto``: MNIST's
60k training images when present or downloadable; offline, the test split minus the
fixed 1,000-image holdout) and its accuracy on the evaluation split (the holdout) is
recorded with every result as ``classifier_acc``. The cache key includes that split, so a
classifier is never scored on images it was trained on when the machine later goes online.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from raygen.core.diskcache import cached, entry
from raygen.core.errors import RaygenError
from raygen.data import Data, load_data
from raygen.models.base import adam, step


@dataclass(frozen=True)
class ClassifierConfig:
    channels: tuple[int, ...] = (16, 32)  # 3x3 convs, each followed by 2x2 max-pooling
    hidden: int = 128  # penultimate width: the classifier-FID feature dimension
    epochs: int = 4
    batch_size: int = 64
    lr: float = 1e-2  # peak of a one-cycle schedule (Adam)
    shift: int = 1  # augmentation: random translations of up to this many pixels
    seed: int = 0


# The recipe that, on MNIST, came closest to the wider nets' holdout accuracy at a fraction of
# their training and scoring time; larger shifts, batches or lr and strided convs cost
# accuracy (the figures: benchmarks/README.md).
CONFIG = ClassifierConfig()
VERSION = 1  # bump when the architecture or the training recipe changes (new cache entries)


class DomainClassifier(nn.Module):
    """(B, C, H, W) in [0, 1] -> [conv 3x3, ReLU, max-pool 2] per channel count -> flatten
    -> dense ``hidden`` + ReLU (the features) -> class logits. LeNet-like, the usual
    backbone of "MNIST FID" scores."""

    def __init__(self, shape, num_classes: int, cfg: ClassifierConfig = CONFIG):
        super().__init__()
        self.cfg = cfg
        c, h, w = shape
        convs: list[nn.Module] = []
        for ch in cfg.channels:
            convs += [nn.Conv2d(c, ch, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c, h, w = ch, h // 2, w // 2
        if h < 1 or w < 1:
            raise RaygenError(f"images of shape {tuple(shape)} are too small for the classifier's "
                              f"{len(cfg.channels)} poolings")
        self.features = nn.Sequential(*convs, nn.Flatten(), nn.Linear(c * h * w, cfg.hidden), nn.ReLU())
        self.head = nn.Linear(cfg.hidden, num_classes)
        self.tag = ""  # set by ``load``: names this trained instance in reference-feature caches
        self.describe = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def extract(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> penultimate features (B, hidden), logits (B, classes): ``self.features(x)`` bit
        for bit, faster on a CPU (benchmarks/README.md): PyTorch's CPU max-pooling is much
        slower than an elementwise maximum of the four 2x2 phases, and ReLU commutes with
        max, so it runs on the pooled tensor, a quarter of the size."""
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        for conv in convs:
            x = F.relu(max_pool2(conv(x)))
        dense = self.features[-2]  # after the convs: flatten, dense, ReLU
        feats = F.relu(dense(x.flatten(1)))
        return feats, self.head(feats)


def max_pool2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2)`` (odd trailing rows and columns dropped) as the maximum of
    even and odd rows, then of even and odd columns: the same values, exactly."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    rows = torch.maximum(x[..., 0:h:2, :w], x[..., 1:h:2, :w])
    return torch.maximum(rows[..., 0::2], rows[..., 1::2])


def random_shift(x: torch.Tensor, pixels: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by a random whole number of pixels in [-pixels, pixels] (zero fill)."""
    if pixels <= 0:
        return x
    b, _, h, w = x.shape
    shift = torch.randint(-pixels, pixels + 1, (b, 2), generator=gen).to(x.device, x.dtype)
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2], theta[:, 1, 2] = 2 * shift[:, 0] / w, 2 * shift[:, 1] / h  # whole pixels (align_corners=False)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


@torch.no_grad()
def accuracy(model: DomainClassifier, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    model.eval()
    right = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    return right / len(x)


def train(data: Data, device: torch.device | str, cfg: ClassifierConfig = CONFIG) -> dict:
    """Train on ``data.train`` (images in [0, 1]); return the checkpoint to cache.

    On a CPU it trains on one thread: the same weights whatever the machine's thread count,
    and for convs this small more threads barely help, while an oversubscribed machine makes
    them far slower (benchmarks/README.md)."""
    if data.num_classes < 2:
        raise RaygenError(f"dataset {data.name!r} has no class labels, so the classifier metrics "
                          f"(cls_*, kid, precision, recall) do not apply to it")
    threads = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)
    try:
        return _train(data, device, cfg)
    finally:
        torch.set_num_threads(threads)


def _train(data: Data, device: torch.device | str, cfg: ClassifierConfig) -> dict:
    with torch.random.fork_rng():  # leave the caller's random streams alone
        torch.manual_seed(cfg.seed)
        model = DomainClassifier(data.shape, data.num_classes, cfg).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)  # batches and shifts
    opt = adam(model.parameters(), lr=cfg.lr)
    steps = cfg.epochs * (len(data.train) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(steps, 1))
    t0 = time.perf_counter()
    model.train()
    for _ in range(cfg.epochs):
        for x, y in data.train.batches(cfg.batch_size, gen):
            x, y = random_shift(x.to(device), cfg.shift, gen), y.to(device)
            loss = F.cross_entropy(model(x), y)
            step(opt, loss)
            if sched.last_epoch < steps:
                sched.step()
    seconds = time.perf_counter() - t0
    acc = accuracy(model, data.eval.x.to(device), data.eval.y.to(device))
    print(f"raygen: trained the {data.name} classifier on {data.train_split} in {seconds:.1f} s; "
          f"accuracy on {data.eval_split}: {acc:.4f}", flush=True)
    return {"state": {k: v.cpu() for k, v in model.state_dict().items()}, "shape": data.shape,
            "num_classes": data.num_classes, "accuracy": acc, "train_split": data.train_split,
            "eval_split": data.eval_split, "train_seconds": seconds, "config": asdict(cfg),
            "id": uuid.uuid4().hex[:8]}  # names this training run in reference-feature caches


CHECKPOINT_KEYS = ("state", "shape", "num_classes", "accuracy", "train_split", "eval_split", "config", "id")
_LOADED: dict[tuple, tuple[DomainClassifier, dict]] = {}  # per process: trials reuse the loaded classifier


def load(dataset: str, data_root: str | Path | None, cache_dir: str | Path, device: torch.device | str,
         holdout: int = 1000) -> tuple[DomainClassifier, dict]:
    """The trained classifier for ``dataset`` (training and caching it on first use) and its
    checkpoint info (accuracy, splits, training time)."""
    key = (dataset, str(data_root), str(cache_dir), str(device), holdout)
    if key not in _LOADED:
        data = load_data(dataset, split="auto", eval_split="test", holdout=holdout, root=data_root, device="cpu")
        path = entry(cache_dir, "classifiers", dataset, data.train_split, f"v{VERSION}")
        ckpt = cached(path, lambda: train(data, device), keys=CHECKPOINT_KEYS)
        model = DomainClassifier(ckpt["shape"], ckpt["num_classes"], ClassifierConfig(**ckpt["config"]))
        model.load_state_dict(ckpt["state"])
        model.tag = f"cls_{dataset}_{ckpt['train_split']}_{ckpt['id']}"
        arch = "-".join(map(str, (*model.cfg.channels, model.cfg.hidden)))
        model.describe = (f"{dataset} CNN {arch} penultimate (trained on {ckpt['train_split']}, "
                          f"accuracy {ckpt['accuracy']:.4f} on {ckpt['eval_split']})")
        _LOADED.clear()  # one classifier resident per worker, like the dataset
        _LOADED[key] = (model.to(device).eval(), {k: v for k, v in ckpt.items() if k != "state"})
    return _LOADED[key]
