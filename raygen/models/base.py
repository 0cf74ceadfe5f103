"""The one interface every model implements, so one trainable serves them all.

A model owns its networks, its optimizers and its training step (GAN alternation and
two-stage schedules live inside the model). Public tensors are in the model's data
range (``Config.data_range``): (0, 1) for sigmoid outputs, (-1, 1) for tanh, the data's
own values for linear outputs.

Adding a model is one class plus one decorator line::

    @MODELS.register("my_vae")
    class MyVAE(VAE):
        def regularizer(self, z, mu, logvar): ...
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from raygen.core.diskcache import default_cache_dir
from raygen.core.errors import RaygenError
from raygen.core.settings import setting
from raygen.record.columns import Column

_RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "linear": None}


@dataclass
class ModelConfig:
    latent_dim: int = setting(10, ge=1, le=100_000)
    lr: float = setting(1e-3, gt=0, le=10)
    output: str = setting("sigmoid", choices=("sigmoid", "tanh", "linear"))  # the decoder/generator's last activation

    @property
    def data_range(self) -> tuple[float, float] | None:
        if self.output not in _RANGES:
            raise RaygenError(f"output must be one of {', '.join(_RANGES)}, got {self.output!r}")
        return _RANGES[self.output]


@dataclass
class Context:
    """What a model may need beyond its config: where things are shared."""

    seed: int = 0
    sweep_dir: Path | None = None  # <storage>/<sweep>: caches shared by the trials of a sweep
    cache_dir: Path = field(default_factory=default_cache_dir)
    data_root: Path | None = None
    out_dir: Path | None = None  # the trial's own folder (None: it writes no files)


class GenerativeModel(nn.Module):
    Config: ClassVar[type] = ModelConfig
    registry_name: ClassVar[str] = "?"
    has_encoder: ClassVar[bool] = False
    # Columns ``extra_metrics`` fills: label, direction (see raygen.record.columns).
    metric_columns: ClassVar[tuple[Column, ...]] = ()
    # Every other key the model reports, with its kind (``record.keys.Kind``): its training
    # losses beyond ``loss`` (``train_step``) and its hooks' values. The sweep types and the
    # report reads each column by it; the contract test (tests/record/test_record_keys.py) checks that
    # a model reports exactly these.
    reports: ClassVar[dict[str, str]] = {}
    # Stacked training (raygen.engine.stacking) vectorises K trials of one architecture into one model:
    # a model allows it when its step is one optimizer over ``loss`` and every random draw of the
    # loss goes through ``noise``. ``stack_weights``: float config keys that may differ between
    # the stacked trials (loss weights). ``stack_refusal``: why not, in one line.
    stackable: ClassVar[bool] = False
    stack_weights: ClassVar[tuple[str, ...]] = ()
    stack_refusal: ClassVar[str] = "declares no stacked training"
    # True: stacked training hands each member its own step's losses (``observe_step``); off by
    # default, since slicing K members' losses every step costs time for a hook that does nothing.
    stack_observes_steps: ClassVar[bool] = False
    # Leading member axes of the tensors ``loss`` sees: 1 in a natively stacked copy
    # (raygen.engine.batched), whose loss terms then come out one per member.
    member_dims: int = 0
    # What an equal-budget sweep (a sweep file's budget:) may tune, in the sweep file's range
    # forms; a subclass extends its parent's with its own weights. Ranges span the values the
    # model's own paper and its usual reimplementations use, a decade or more around its default.
    search_space: ClassVar[dict[str, dict]] = {"lr": {"loguniform": [1e-4, 3e-3]}}

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 10):
        super().__init__()
        self.cfg = cfg
        self.shape = tuple(shape)  # one item, e.g. (1, 28, 28) or (2,)
        self.num_classes = num_classes

    # --- training ------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": adam(self.parameters(), lr=self.cfg.lr)}

    def train_step(self, x: torch.Tensor, y: torch.Tensor,
                   opts: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        """One optimisation step on a batch; returns detached scalar loss tensors (left on the
        device: the trainable averages them per epoch without a host sync per step)."""
        raise NotImplementedError

    def observe_step(self, out: dict[str, torch.Tensor]) -> None:
        """Hook after each step with its detached losses, to measure only (e.g. a convergence
        test); stacked training calls it per member when ``stack_observes_steps``."""

    def on_train_start(self, data, ctx: Context) -> dict[str, Any]:
        """Hook before the first epoch (not after a resume): e.g. a pretraining phase
        shared across trials through ``ctx.sweep_dir``. Returns values to report."""
        return {}

    def attach(self, data, ctx: Context) -> None:
        """Called once the model is built, before a checkpoint is loaded into it, with the
        trial's data and context: for a model that draws batches of its own."""

    def on_epoch_end(self, epoch: int, data) -> dict[str, Any]:
        """Hook after each epoch (phase switches); returns extra values to report."""
        return {}

    def on_train_end(self, data) -> dict[str, Any]:
        """Hook after the last epoch, before evaluation (e.g. fit a latent sampler)."""
        return {}

    def artifacts(self, data, out_dir: Path) -> dict[str, str]:
        """Hook at the end of a trial: write extra files (figures) into ``out_dir`` and return
        ``{"xxx_png": "file.png"}`` (paths relative to ``out_dir``); they become result columns."""
        return {}

    def extra_metrics(self, data, n: int) -> dict[str, Any]:
        """Hook run by the evaluation (inside its error guard) on the first ``n`` held-out
        items: measures only this model can take (declare them in ``metric_columns``)."""
        return {}

    # --- generation ----------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """(n, *shape) samples in the data range."""
        raise NotImplementedError

    def output_activation(self, h: torch.Tensor) -> torch.Tensor:
        return {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "linear": lambda t: t}[self.cfg.output](h)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def param_counts(self) -> dict[str, int]:
        """Parameters per top-level network (generator, discriminator, encoder, ...)."""
        return {name: sum(p.numel() for p in m.parameters()) for name, m in self.named_children()}


@dataclass
class AutoEncoderConfig(ModelConfig):
    # where sample() draws latents (models/latent.py)
    sampler: str = setting("prior", choices=("prior", "gaussian", "gmm"))
    sampler_components: int = setting(10, ge=1, le=10_000)  # mixture components of sampler: gmm


class AutoEncoderModel(GenerativeModel):
    """A model with an encoder: ``encode`` gives latent codes (the mean for a VAE),
    ``reconstruct`` decodes them back to the data range.

    ``sample`` decodes latents from the model's own prior (``prior_sample``), or, with
    ``sampler: gaussian | gmm``, from a distribution fitted by maximum likelihood to the
    encoded training set at the end of training (``latent.LatentFit``, whose buffers carry the
    fit in the state dict and so in checkpoints), so "VAE + GMM" and "AE + GMM" are one setting apart.
    """

    Config = AutoEncoderConfig
    has_encoder = True
    has_prior: ClassVar[bool] = True  # False: sampling needs a fitted sampler (sampler: prior is an error)

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 10):
        super().__init__(cfg, shape, num_classes)
        from raygen.models.latent import LatentFit

        self.latent_fit = LatentFit(getattr(cfg, "sampler", "prior"), getattr(cfg, "sampler_components", 10),
                                    cfg.latent_dim, needs_fit=not self.has_prior)

    def prior_sample(self, n: int) -> torch.Tensor:
        """(n, latent) draws from the model's own prior."""
        raise NotImplementedError

    def latent_sample(self, n: int) -> torch.Tensor:
        return self.latent_fit.sample(n) if self.latent_fit.fitted else self.prior_sample(n)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        return self.decode(self.latent_sample(n))

    def on_train_end(self, data) -> dict[str, Any]:
        return self.latent_fit.fit_encoder(self, data.train.x) if self.latent_fit.active else {}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


@torch.no_grad()
def batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """``fn`` over ``x`` in slices of ``batch`` items, concatenated (bounded memory)."""
    return torch.cat([fn(x[i:i + batch]) for i in range(0, len(x), batch)])


def step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One optimiser step on ``loss`` (gradients cleared first)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def adam(params, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """Adam in PyTorch's fused implementation where the parameters' device has one (CPU and
    CUDA): the same update in one kernel per parameter group, fewer passes over memory than
    the default's per-tensor steps (``python -m benchmarks.optimizers``; figures in
    benchmarks/README.md), without torch.optim's compiler hooks (``models.optim``); elsewhere
    the default."""
    from raygen.models.optim import FusedAdam

    params = list(params)
    if bool(params) and all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params):
        return FusedAdam(params, lr=lr, betas=betas)
    return torch.optim.Adam(params, lr=lr, betas=betas)
