"""Faults injected on purpose, for the test suite only. A raygen plugin (``$RAYGEN_PLUGINS``,
set by the ``faults`` fixture in tests/conftest.py, so the sweeps and Ray workers a test
starts load it too): ``faulty_vae_mlp`` is ``vae_mlp`` with three settings, each an epoch
(0: never) at whose end it

- ``fail_at_epoch``: raises (a trial that fails);
- ``nan_at_epoch``: reports a NaN loss (a trial that diverges);
- ``kill_at_epoch``: SIGKILLs its own process once, as if its node had gone away (a marker
  file ``.killed_once`` in the trial's folder, holding the epoch, keeps the retry alive).

and ``fail_at_setup`` raises MemoryError while the model is built (an allocation the OS refuses,
on a fresh or a reused Ray worker).

Product code has no such hooks: a config or saved trial handed to a user cannot trigger them.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import torch

from raygen.core.registry import MODELS
from raygen.core.settings import setting
from raygen.models.vae import MLPVAE, MLPVAEConfig


@dataclass
class FaultyConfig(MLPVAEConfig):
    fail_at_epoch: int = setting(0, ge=0)
    nan_at_epoch: int = setting(0, ge=0)
    kill_at_epoch: int = setting(0, ge=0)
    fail_at_setup: bool = False


@MODELS.register("faulty_vae_mlp")
class FaultyMLPVAE(MLPVAE):
    Config = FaultyConfig
    # One member of a stack may diverge alone (tests/engine/test_stacking.py); the loss never reads it.
    stack_weights = (*MLPVAE.stack_weights, "nan_at_epoch")
    marker: Path | None = None  # set at the first epoch: a trial resumed from a checkpoint was killed already

    def __init__(self, cfg: FaultyConfig, shape, num_classes: int = 10):
        if cfg.fail_at_setup and torch.empty(0).device.type != "meta":  # the planner's dry build allocates nothing
            raise MemoryError("fail_at_setup: cannot allocate the model (testing aid)")
        super().__init__(cfg, shape, num_classes)

    def on_train_start(self, data, ctx):
        self.marker = (ctx.out_dir or Path(".")) / ".killed_once"
        return super().on_train_start(data, ctx)

    def on_epoch_end(self, epoch: int, data) -> dict:
        out = super().on_epoch_end(epoch, data)
        c = self.cfg
        if c.fail_at_epoch == epoch:
            raise RuntimeError(f"fail_at_epoch={epoch}: failing on purpose (testing aid)")
        if c.kill_at_epoch == epoch and self.marker is not None and not self.marker.exists():
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self.marker.write_text(str(epoch))
            os.kill(os.getpid(), signal.SIGKILL)
        if c.nan_at_epoch == epoch:
            out = {**out, "loss": float("nan")}
        return out
