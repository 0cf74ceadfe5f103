"""Figures a trial writes beside its results (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

import torch


def points_figure(x: torch.Tensor, recon: torch.Tensor, samples: torch.Tensor, path: Path, title: str = "") -> None:
    """Seed 004's Figure 4 for one trial, 2-D points: left, the training data and its
    reconstructions; right, the generated points (``samples``, e.g. 10,000)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, recon, samples = (t.detach().float().cpu().numpy() for t in (x, recon, samples))
    fig, (ax_r, ax_s) = plt.subplots(1, 2, figsize=(8, 3.6), sharex=True, sharey=True)
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
    fig.savefig(path, dpi=100)
    plt.close(fig)
