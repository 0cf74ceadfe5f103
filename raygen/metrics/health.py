"""Did the model train? The checks the field uses to tell a trained generative model from a
failed one, and a verdict per trial: ``ok``, ``warning`` or ``failed`` with the reason.

A comparison is only honest when every model in it trained soundly: the report marks an
unhealthy trial wherever it appears and never counts a failed one as agreement.

- Active latent units (Burda, Grosse and Salakhutdinov 2016, section 5.2): unit u is active
  when the variance over the data of its posterior mean E_q(z|x)[z_u] exceeds 0.01; and the
  KL per latent dimension (a unit whose KL to the prior is ~0 carries no information).
- Discriminator saturation (adversarial models): the discriminator's loss near 0 for most of
  training means the generator gets no useful gradient.
- Mode collapse: classes covered by 10,000 samples under the domain classifier
  (``cls_coverage``, from the classifier family).
- Reconstruction against the mean image: a model that reconstructs held-out images no
  better than their training mean has learnt nothing of them.
- Divergence: a non-finite loss (the trial's status).
"""
from __future__ import annotations

from typing import Any

import torch

from raygen.record.columns import HIGHER, LOWER, Column

ACTIVE_VARIANCE = 0.01  # Burda et al. 2016's threshold on Cov_x(E_q[z_u])
COLLAPSED_KL = 0.01  # nats: a latent unit this close to its prior carries nothing
SATURATED_LOSS = 1e-3  # a discriminator loss below this: it classifies with certainty
SATURATED_SHARE = 0.5  # failed when saturated for at least this share of the epochs
COVERAGE_WARN = 0.8  # samples cover fewer than this share of the classes: a warning
COVERAGE_FAIL = 0.3  # ... fewer than this share: mode collapse

COLUMNS = (
    Column("active_units", "active latent units (Burda et al.)", HIGHER, compare=False),
    Column("kl_collapsed_units", "latent units with KL < 0.01 nats", LOWER, compare=False),
    Column("recon_mse_mean_image", "recon. MSE of the mean image", LOWER, compare=False),
    Column("d_saturated_share", "share of epochs the discriminator saturated", LOWER, compare=False),
)


@torch.no_grad()
def latent_health(model, x: torch.Tensor, batch: int = 1000) -> dict[str, Any]:
    """Active units and KL-collapsed units of ``model``'s encoder over the images ``x``."""
    if not model.has_encoder:
        return {}
    dist = getattr(model, "encode_dist", None)
    means, kls = [], []
    for i in range(0, len(x), batch):
        if dist is None:
            means.append(model.encode(x[i:i + batch]).flatten(1))
            continue
        mu, logvar = dist(x[i:i + batch])
        means.append(mu.flatten(1))
        if logvar is not None:  # KL(N(mu, sigma^2) || N(0, 1)) per unit
            kls.append(0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).flatten(1))
    mu = torch.cat(means).double()  # (N, latent)
    out: dict[str, Any] = {"active_units": int((mu.var(0) > ACTIVE_VARIANCE).sum())}
    if kls:
        out["kl_collapsed_units"] = int((torch.cat(kls).double().mean(0) < COLLAPSED_KL).sum())
    return out


@torch.no_grad()
def mean_image_mse(train: torch.Tensor, held_out: torch.Tensor) -> float:
    """MSE of predicting every held-out image by the training set's mean image (both in [0, 1])."""
    return float((held_out - train.mean(0, keepdim=True)).pow(2).mean())


def saturated_share(history: list[dict[str, float]], key: str = "d_loss") -> float | None:
    """The share of epochs whose mean discriminator loss was below ``SATURATED_LOSS``."""
    values = [h[key] for h in history if key in h]
    return sum(v < SATURATED_LOSS for v in values) / len(values) if values else None


def verdict(result: dict[str, Any], latent_dim: int | None = None,
            num_classes: int | None = None) -> tuple[str, str]:
    """(``ok`` | ``warning`` | ``failed``, the reasons) from a trial's last result."""
    failed, warned = [], []
    if result.get("status") == "diverged":
        failed.append(str(result.get("error") or "diverged"))
    mse, base = result.get("recon_mse"), result.get("recon_mse_mean_image")
    if mse is not None and base and mse >= base:
        failed.append(f"reconstructs no better than the mean image (MSE {mse:.3g} vs {base:.3g})")
    share = result.get("d_saturated_share")
    if share is not None and share >= SATURATED_SHARE:
        failed.append(f"discriminator saturated (loss < {SATURATED_LOSS:g}) in {share:.0%} of epochs")
    elif share:
        warned.append(f"discriminator saturated in {share:.0%} of epochs")
    covered = result.get("cls_coverage")
    if covered is not None and num_classes:
        if covered < COVERAGE_FAIL * num_classes:
            failed.append(f"mode collapse: samples cover {covered} of {num_classes} classes")
        elif covered < COVERAGE_WARN * num_classes:
            warned.append(f"samples cover {covered} of {num_classes} classes")
    active = result.get("active_units")
    if active is not None and latent_dim:
        if active == 0:
            failed.append(f"posterior collapse: no active latent unit of {latent_dim}")
        elif active < latent_dim / 2:
            warned.append(f"{active} of {latent_dim} latent units active")
    if failed:
        return "failed", "; ".join(failed + warned)
    return ("warning", "; ".join(warned)) if warned else ("ok", "")
