"""Chaturvedula's GAN vs VAE on MNIST (``sweeps/gan_vs_vae*.yaml``): the report's "best
configuration per model" table in the paper's form, its FID, IS, reconstruction error,
parameters and training time, whenever a run compares a GAN with a model that reconstructs.
"""
from __future__ import annotations

import pandas as pd

from raygen.report.analysis import Analysis
from raygen.report.papers.section import Section, Subject
from raygen.report.tables import Table, best_per_model_table

# Inception FID/IS as the paper; the domain classifier's FID/IS beside them (the stand-ins
# when Inception weights are absent, and what "best" then goes by).
PAPER_METRICS = ("fid", "inception_score")
COLUMNS = (*PAPER_METRICS, "cls_fid", "cls_is", "recon_mse")


def applies(lay: Analysis) -> bool:
    """The run holds a GAN (its registry names start with gan) and a model that reconstructs."""
    res = lay.results
    if "model" not in res or "recon_mse" not in res:
        return False
    recon = set(res.loc[res["recon_mse"].notna(), "model"].dropna().astype(str))
    return any(m.startswith("gan") for m in lay.models()) and bool(recon)


def gan_vs_vae_table(lay: Analysis, summ: pd.DataFrame) -> Table:
    """Each model's best configuration with the paper's columns (those measured here)."""
    metrics = [m for m in COLUMNS if m in lay.metrics]
    missing = [lay.label(m) for m in PAPER_METRICS if m not in lay.metrics]
    return best_per_model_table(lay, summ, metrics, "GAN vs VAE (Chaturvedula form)", missing)


class GanVsVae(Section):
    def applies(self, s: Subject) -> bool:
        return applies(s.lay)

    def glance(self, s: Subject) -> list[Table]:
        return [gan_vs_vae_table(s.lay, s.summ)]  # key "best": in place of the general table


SECTIONS = (GanVsVae(),)
