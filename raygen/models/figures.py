"""Figures a trial writes beside its results: image grids (PNG, written with Pillow, no
torchvision), Ko et al. 2024's Figure 4 for 2-D points, Zemouri 2020's latent scatter
(Figure 7) and class decodes (Figure 8). Matplotlib on its Agg canvas: no display."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

PAD = 2  # pixels between and around the tiles of a grid (torchvision's make_grid layout)
RED = (255, 0, 0)


def grid_array(images: torch.Tensor, nrow: int = 8) -> np.ndarray:
    """(N, C, H, W) images in [0, 1] -> (H', W', 3) uint8 tiles, ``nrow`` per row, on black."""
    x = images.detach().float().clamp(0, 1).cpu()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    n, _, h, w = x.shape
    cols, rows = min(nrow, n), -(-n // nrow)
    out = np.zeros((rows * (h + PAD) + PAD, cols * (w + PAD) + PAD, 3), dtype=np.uint8)
    # The same rounding as torchvision's save_image: x * 255 + 0.5, clamped.
    tiles = (x * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for i, tile in enumerate(tiles):
        top, left = PAD + (i // nrow) * (h + PAD), PAD + (i % nrow) * (w + PAD)
        out[top:top + h, left:left + w] = tile
    return out


def frame(grid: np.ndarray, i: int, nrow: int, h: int, w: int, color=RED) -> None:
    """A 1-pixel frame round tile ``i``, inside the padding (the tile itself untouched)."""
    top, left = PAD + (i // nrow) * (h + PAD), PAD + (i % nrow) * (w + PAD)
    grid[top - 1, left - 1:left + w + 1] = color
    grid[top + h, left - 1:left + w + 1] = color
    grid[top - 1:top + h + 1, left - 1] = color
    grid[top - 1:top + h + 1, left + w] = color


def image_grid(images: torch.Tensor, path: Path, nrow: int = 8, frames: torch.Tensor | None = None) -> None:
    """Save images in [0, 1] as one PNG grid. With ``frames`` (one bool per image) the flagged
    images get a red frame (Zemouri 2020's Figure 9 frames reconstructions that changed class)."""
    from PIL import Image

    grid = grid_array(images, nrow)
    if frames is not None:
        h, w = images.shape[2:]
        for i in torch.nonzero(frames.cpu()).flatten().tolist():
            frame(grid, i, nrow, h, w)
    Image.fromarray(grid).save(path)


def _figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def points_figure(x: torch.Tensor, recon: torch.Tensor, samples: torch.Tensor, path: Path, title: str = "") -> None:
    """Ko et al. 2024's Figure 4 for one trial, 2-D points: left, the training data and its
    reconstructions; right, the generated points (``samples``, e.g. 10,000)."""
    x, recon, samples = (t.detach().float().cpu().numpy() for t in (x, recon, samples))
    fig = _figure((8, 3.6))
    ax_r, ax_s = fig.subplots(1, 2, sharex=True, sharey=True)
    ax_r.scatter(x[:, 0], x[:, 1], s=12, c="0.6", label="data")
    ax_r.scatter(recon[:, 0], recon[:, 1], s=12, c="tab:red", label="reconstruction")
    ax_r.set_title("reconstruction")
    ax_r.legend(loc="lower left", fontsize=7)
    ax_s.scatter(samples[:, 0], samples[:, 1], s=1, alpha=0.2, c="tab:blue", rasterized=True)
    ax_s.scatter(x[:, 0], x[:, 1], s=6, c="0.6")
    ax_s.set_title(f"{len(samples):,} generated")
    lo, hi = x.min(0), x.max(0)
    pad = 0.5 * (hi - lo)
    ax_r.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax_r.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)


def latent_scatter(z: torch.Tensor, y: torch.Tensor, path: Path, title: str) -> None:
    """Zemouri 2020's Figure 7: 2-D latent means coloured by class."""
    fig = _figure((6, 6))
    ax = fig.add_subplot()
    classes = torch.unique(y).tolist()
    cmap = "tab10" if len(classes) <= 10 else "nipy_spectral"
    points = ax.scatter(z[:, 0].numpy(), z[:, 1].numpy(), c=y.numpy(), cmap=cmap, s=4, alpha=0.7)
    if len(classes) <= 10:
        ax.legend(*points.legend_elements(), title="class", loc="best", fontsize=7, markerscale=0.8)
    ax.set(title=title, xlabel="z1", ylabel="z2")
    fig.tight_layout()
    fig.savefig(path)


def class_region_points(z: torch.Tensor, y: torch.Tensor, per_class: int = 10, max_classes: int = 20,
                        seed: int = 0) -> torch.Tensor:
    """Zemouri 2020's Figure 8: ``per_class`` latent points from each class's region (a
    Gaussian fitted to that class's codes), one row per class; only the first
    ``max_classes`` classes for datasets with many (Omniglot's 50, Caltech's 101)."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for c in torch.unique(y)[:max_classes]:
        zc = z[y == c]  # (n_c, 2)
        std = zc.std(0) if len(zc) > 1 else torch.zeros_like(zc[0])
        rows.append(zc.mean(0) + std * torch.randn(per_class, z.shape[1], generator=g))
    return torch.cat(rows)  # (classes * per_class, 2)
