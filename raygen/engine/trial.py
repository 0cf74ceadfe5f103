"""One configuration built, trained, evaluated and saved, with no Ray in it: it runs and
tests anywhere, and ``trainable.GenerativeTrainable`` drives it for Ray Tune.

A non-finite loss stops the trial as ``status: diverged`` with the epoch it happened.
"""
from __future__ import annotations

import dataclasses
import math
import os
import pickle
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from raygen.core.errors import RaygenError
from raygen.core.values import number
from raygen.data import Data, load_data
from raygen.engine import precision
from raygen.engine.config import TrainConfig, batch_refusal, split_config
from raygen.metrics import health
from raygen.metrics.evaluate import Eval, declared_columns, evaluate
from raygen.models.base import Context
from raygen.models.figures import image_grid
from raygen.record import keys
from raygen.record.transport import given_config

_DATA_CACHE: dict[tuple, Data] = {}  # survives actor reuse: a dataset is loaded once per worker


@contextmanager
def data_cache_kept() -> Iterator[None]:
    """Trials built inside leave the process's dataset cache as they found it (the driver's stack
    probe: a dataset kept there would stay resident for the whole sweep)."""
    before = dict(_DATA_CACHE)
    try:
        yield
    finally:
        _DATA_CACHE.clear()
        _DATA_CACHE.update(before)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(gpus: float) -> torch.device:
    return torch.device("cuda") if gpus > 0 and torch.cuda.is_available() else torch.device("cpu")


def usable_device(device: torch.device | str) -> torch.device:
    """``device`` as torch names it, when this machine has it; else a RaygenError, before any data
    is read (torch's own errors name its build, not the fix)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise RaygenError(f"device {device!r} is not one torch knows; give cpu or cuda (cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RaygenError(f"device {device!r}: no CUDA GPU here (torch sees none); give device='cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RaygenError(f"device {device!r}: this machine has {torch.cuda.device_count()} GPU(s), "
                          f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if dev.type not in ("cpu", "cuda"):
        raise RaygenError(f"device {device!r}: raygen trains on cpu or cuda")
    return dev


def writable_folder(folder: str | os.PathLike) -> Path:
    """``folder``, made if absent; a RaygenError now, not after training, when it cannot be."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RaygenError(f"out_dir {str(folder)!r} cannot be made ({exc.strerror or exc}); give a folder "
                          f"that can be written") from None
    if not os.access(path, os.W_OK):
        raise RaygenError(f"out_dir {str(folder)!r} cannot be written; give a folder that can be")
    return path


def device_name(device: torch.device) -> str:
    """``cpu`` or ``cuda (NVIDIA H100 80GB HBM3)``."""
    return f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)


def tensorboard_images(folder: Path, pngs: dict[str, str], step: int) -> None:
    """The trial's image grids beside the scalars Ray Tune's TensorBoard logger writes into
    the same folder (tensorboardX comes with Ray Tune; without it, nothing)."""
    try:
        from PIL import Image
        from tensorboardX import SummaryWriter
    except ImportError:
        return
    with SummaryWriter(str(folder), filename_suffix=".images") as writer:
        for key, name in pngs.items():
            with Image.open(folder / name) as im:
                writer.add_image(key.removesuffix(keys.IMAGE_SUFFIX), np.asarray(im.convert("RGB")), step,
                                 dataformats="HWC")


class Trial:
    """Build, train and evaluate one configuration."""

    def __init__(self, config: dict[str, Any], device: torch.device | str = "cpu",
                 data_root: str | None = None, out_dir: str | os.PathLike | None = None,
                 sweep_dir: str | os.PathLike | None = None):
        self.cfg: TrainConfig
        if not isinstance(config, dict):
            raise RaygenError(f"a trial's config is a dict like {{'model': 'vae_mlp', 'epochs': 3}}; got "
                              f"{type(config).__name__}")
        self.config = given_config(config)  # as given (lists decoded), for ``save``
        self.result: dict[str, Any] = {}  # the last epoch's numbers, set by ``raygen.train``
        self.cfg, model_cls, model_cfg = split_config(self.config)
        self.device = usable_device(device)
        precision.check(self.cfg.train_precision, self.device)
        self.out_dir = writable_folder(out_dir) if out_dir else None

        seed_everything(self.cfg.seed)
        self.data = self._load(model_cfg.data_range, data_root)
        self.model = model_cls(model_cfg, self.data.shape, self.data.num_classes).to(self.device)
        why = batch_refusal(self.model, self.cfg)
        if why:
            raise RaygenError(why)
        self.opts = self.model.configure_optimizers()
        self.batch_rng = torch.Generator().manual_seed(self.cfg.seed)
        self.ctx = Context(seed=self.cfg.seed, sweep_dir=Path(sweep_dir) if sweep_dir else None,
                           data_root=Path(data_root) if data_root else None, out_dir=self.out_dir)
        self.model.attach(self.data, self.ctx)
        self.epoch = 0
        self.train_time = 0.0
        # CPU-seconds of every thread of this process while training: unlike wall time, not
        # stretched by other trials sharing the machine's cores (a fair time to compare).
        self.train_cpu = 0.0
        self.resumed_from_epoch: int | None = None  # set when restored from a checkpoint
        # Every epoch's numbers, kept in the checkpoint and sent with the last result: Ray's
        # result.json may lose the epochs before a restart (on restore it copies the file back
        # from storage, where the driver may not have synced it yet), and report_every > 1
        # reports only some epochs.
        self.history: list[dict[str, float]] = []

    def _load(self, data_range, data_root) -> Data:
        c = self.cfg
        key = (c.dataset, c.split, c.eval_split, c.holdout, c.limit, c.validation, str(data_root), str(self.device),
               data_range)
        if key not in _DATA_CACHE:
            _DATA_CACHE.clear()  # one dataset resident per worker
            _DATA_CACHE[key] = load_data(c.dataset, split=c.split, eval_split=c.eval_split, holdout=c.holdout,
                                         root=data_root, device=self.device, data_range=data_range,
                                         limit=c.limit or None, validation=c.validation)
        return _DATA_CACHE[key]

    # --- one epoch -------------------------------------------------------------------
    def train_epoch(self) -> dict[str, Any]:
        """One epoch (and, when it is due, an evaluation): its result, also kept in ``history``."""
        return self.record(self._train_epoch())

    def record(self, result: dict[str, Any]) -> dict[str, Any]:
        """Keep an epoch's numbers in ``history``."""
        numbers = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.history.append(numbers)
        return result

    def begin_epoch(self) -> None:
        self.epoch += 1

    def _train_epoch(self) -> dict[str, Any]:
        self.begin_epoch()
        c, model = self.cfg, self.model
        model.train()
        t0, cpu0 = time.perf_counter(), time.process_time()
        start = model.on_train_start(self.data, self.ctx) if self.epoch == 1 else {}
        sums: dict[str, torch.Tensor] = {}
        n = 0
        for x, y in self.data.train.batches(c.batch_size, self.batch_rng, c.max_batches or None):
            with precision.steps(c.train_precision, self.device):  # per step: autocast caches its casts of the weights
                out = model.train_step(x, y, self.opts)
            for k, v in out.items():
                sums[k] = sums[k] + v.float() if k in sums else v.float().clone()  # a bf16 sum would round
            n += 1
        extra = model.on_epoch_end(self.epoch, self.data)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        dt, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        return self.end_epoch({k: float(v) / max(n, 1) for k, v in sums.items()}, n, dt, start, extra, cpu)

    def end_epoch(self, losses: dict[str, float], n: int, dt: float, start: dict[str, Any],
                  extra: dict[str, Any], cpu: float = 0.0) -> dict[str, Any]:
        """An epoch's result from its mean losses over ``n`` batches, trained in ``dt`` seconds
        (``cpu`` CPU-seconds):
        divergence, the end of training (hooks, evaluation, images) or an evaluation when due."""
        c, model = self.cfg, self.model
        self.train_time += dt
        self.train_cpu += cpu
        result: dict[str, Any] = dict(losses)
        result.update(start, **extra)
        us = 6  # times recorded to the microsecond: 17 digits each made a long run's epochs file a third larger
        result.update({keys.EPOCH: self.epoch, keys.BATCHES: n, keys.EPOCH_TIME_S: round(dt, us),
                       keys.TRAIN_TIME_S: round(self.train_time, us), keys.EPOCH_CPU_S: round(cpu, us),
                       keys.TRAIN_CPU_S: round(self.train_cpu, us),
                       keys.TORCH_THREADS: torch.get_num_threads(), keys.DEVICE: str(self.device),
                       keys.RESUMED_FROM_EPOCH: self.resumed_from_epoch})
        bad = [k for k, v in result.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            error = f"non-finite {', '.join(bad)} at epoch {self.epoch}"
            result.update({keys.STATUS: keys.DIVERGED, keys.DIVERGED_EPOCH: self.epoch, keys.ERROR: error,
                           keys.DONE: True, keys.HEALTH: "failed", keys.HEALTH_REASON: error})
            return result
        # A model may end its training early by reporting converged (e.g. GAE's delta).
        last = self.epoch >= c.epochs or bool(extra.get(keys.CONVERGED))
        if last:
            result.update(model.on_train_end(self.data))
        if last or (c.eval_every and self.epoch % c.eval_every == 0):
            result.update(self.evaluate(images=last))
        if last:
            result.update(self.health(result, losses))
            result.update({keys.STATUS: keys.COMPLETED, keys.DONE: True})
        return result

    def health(self, result: dict[str, Any], losses: dict[str, float]) -> dict[str, Any]:
        """The training-health measures of the trained model and its verdict (``metrics.health``)."""
        data, model = self.data, self.model
        n = min(self.cfg.eval_samples, len(data.eval))
        out = health.latent_health(model, data.eval.x[:n])
        if model.has_encoder:
            out["recon_mse_mean_image"] = health.mean_image_mse(data.to_unit(data.train.x),
                                                                data.to_unit(data.eval.x[:n]))
        share = health.saturated_share([*self.history, losses])
        if share is not None:
            out["d_saturated_share"] = share
        latent = getattr(model.cfg, "latent_dim", None) if model.has_encoder else None
        classes = data.num_classes if "cls_coverage" in result else None
        out["health"], out["health_reason"] = health.verdict({**result, **out}, latent, classes)
        return out

    def fit(self, log: bool = False) -> dict[str, Any]:
        """Train the remaining epochs (and evaluate at the end); the last epoch's result."""
        while True:
            result = self.train_epoch()
            if log:
                print(f"epoch {result[keys.EPOCH]}: loss {number(result.get(keys.LOSS), whole=True)}"
                      + (f" ({result[keys.STATUS]})" if result.get(keys.STATUS) else ""), flush=True)
            if result.get(keys.DONE):
                return result

    def save(self, path: str | os.PathLike, final: bool = False, history: bool = True) -> Path:
        """The configuration and everything resuming needs, in one file ``load`` reads back;
        ``final``: the trained model only (``state(final=True)``), for a trial that is over;
        ``history=False``: without the epochs' numbers (a sweep keeps them in the trial's epochs
        file and the run's history.parquet: a 20,000-epoch trial's history is megabytes)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = self.state(final)
        if not history:
            del state["history"]
        torch.save({"raygen_trial": 1, "config": self.config, "state": state}, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: torch.device | str = "cpu",
             data_root: str | None = None) -> Trial:
        """A trial saved by ``save``: the same model, optimizers, epoch and history (none for a
        sweep's final checkpoint: read the run's history.parquet). Read with ``weights_only=True``:
        a file from elsewhere cannot run code."""
        usable_device(device)  # a device this machine lacks is said as such, not as a file torch cannot map
        try:
            saved = torch.load(path, map_location=device, weights_only=True)
        except pickle.UnpicklingError:  # not torch's advice (weights_only=False): that would run the file's code
            raise RaygenError(f"{path} is not a saved raygen trial (it holds more than tensors and settings, "
                              f"which a file from elsewhere may not)") from None
        except Exception as exc:
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            raise RaygenError(f"{path} is not a saved raygen trial ({type(exc).__name__}: {first})") from None
        if isinstance(saved, dict) and "raygen_trial" not in saved and ({"model", "epoch"} <= saved.keys()
                                                                       or "members" in saved):
            raise RaygenError(f"{path} is a sweep's checkpoint of a trial under way (its resumable state); load the "
                              f"trial's final model.pt, or finish the trial with the sweep's --resume")
        if not isinstance(saved, dict) or saved.get("raygen_trial") != 1 or not isinstance(saved.get("config"), dict):
            raise RaygenError(f"{path} is not a saved raygen trial (use Trial.save / raygen.train(...).save)")
        trial = cls(saved["config"], device=device, data_root=data_root)
        try:
            trial.load_state(saved["state"])
        except RaygenError as exc:  # weights of another shape, keys missing
            raise RaygenError(f"{path}: its saved state does not fit its config's model ({exc})") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise RaygenError(f"{path}: its saved state is incomplete ({type(exc).__name__}: {exc})") from None
        return trial

    def evaluate(self, images: bool = True) -> dict[str, Any]:
        c, ctx = self.cfg, self.ctx
        ev = Eval(n=min(c.eval_samples, len(self.data.eval)), samples=c.eval_samples,
                  inception_cpu_samples=c.inception_cpu_samples, fid_weights=c.fid_weights,
                  inception_recon=c.inception_recon, holdout=c.holdout,
                  seed=c.seed, data_root=ctx.data_root, cache_dir=ctx.cache_dir)
        out = evaluate(self.model, self.data, ev)
        if self.data.valid is not None:
            out.update(self.evaluate_validation(ev, out))
        out[keys.NUM_PARAMS] = self.model.num_params()
        out.update({keys.params_key(k): v for k, v in self.model.param_counts().items()})  # per network
        out[keys.DEVICE] = device_name(self.device)  # the report's header says where trials ran
        if images and self.out_dir is not None:
            t0 = time.perf_counter()
            out.update(self.save_images())
            out[keys.IMAGES_S] = time.perf_counter() - t0  # a phase of its own in the benchmark line
        return out

    def evaluate_validation(self, ev: Eval, held_out: dict[str, Any]) -> dict[str, Any]:
        """Every metric again on the validation images (``val_<metric>``: what a budget sweep
        chooses on, so the held-out numbers it reports were not used to choose)."""
        view = self.data.validation_view()
        got = evaluate(self.model, view, dataclasses.replace(ev, n=min(ev.n, len(view.eval))))
        directed = {c.name for c in declared_columns() if c.better is not None}
        out = {f"val_{k}": v for k, v in got.items() if k in directed}
        out["eval_time_s"] = held_out.get("eval_time_s", 0.0) + got.get("eval_time_s", 0.0)
        out["val_split"] = view.eval_split
        return out

    @torch.no_grad()
    def save_images(self) -> dict[str, str]:
        """64 samples and, for models with an encoder, 32 held-out inputs with their
        reconstructions (rows of 8 inputs, each followed by its row of reconstructions) as
        PNGs for image data, plus whatever the model's ``artifacts`` hook writes (any data)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.model.eval()
        out = self._image_grids() if len(self.data.shape) == 3 else {}
        out.update(self.model.artifacts(self.data, self.out_dir))
        self.model.train()
        tensorboard_images(self.out_dir, {k: v for k, v in out.items() if keys.is_image(k)}, self.epoch)
        return out

    def _image_grids(self) -> dict[str, str]:
        image_grid(self.data.to_unit(self.model.sample(64)), self.out_dir / "samples.png")
        out = {keys.SAMPLES_PNG: "samples.png"}
        if self.model.has_encoder:
            x = self.data.eval.x[:32]  # (32, C, H, W)
            rows = torch.stack([x.view(4, 8, *x.shape[1:]), self.model.reconstruct(x).view(4, 8, *x.shape[1:])], 1)
            grid = rows.reshape(64, *x.shape[1:])  # input row, its reconstruction row, ...
            image_grid(self.data.to_unit(grid), self.out_dir / "reconstructions.png")
            out[keys.RECONSTRUCTIONS_PNG] = "reconstructions.png"
        return out

    # --- state -----------------------------------------------------------------------
    STATE_KEYS = ("model", "opts", "epoch", "train_time", "history", "batch_rng", "torch_rng", "numpy_rng",
                  "python_rng")

    def state(self, final: bool = False) -> dict[str, Any]:
        """What resuming needs, as tensors, numbers and containers only (checkpoints are read
        back with ``weights_only=True``: a crafted file cannot run code). ``final``: a trial
        that is over resumes nothing: its weights, epoch and history, without the optimizers'
        moments and the random streams (a third of the bytes for Adam)."""
        if final:
            return {"model": self.model.state_dict(), "epoch": self.epoch, "train_time": self.train_time,
                    "train_cpu": self.train_cpu,
                    "history": list(self.history)}
        _, keys, pos, has_gauss, cached = np.random.get_state()
        return {"model": self.model.state_dict(), "opts": {k: o.state_dict() for k, o in self.opts.items()},
                "epoch": self.epoch, "train_time": self.train_time, "train_cpu": self.train_cpu,
                "history": list(self.history),
                "batch_rng": self.batch_rng.get_state(), "torch_rng": torch.get_rng_state(),
                "numpy_rng": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                              "has_gauss": int(has_gauss), "cached": float(cached)},
                "python_rng": random.getstate(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}

    def load_state(self, s: dict[str, Any]) -> None:
        if not isinstance(s, dict) or "model" not in s or "epoch" not in s:
            raise RaygenError("load_state takes what Trial.state() returned (a dict with model, epoch, ...); got "
                              f"{type(s).__name__}{' without model' if isinstance(s, dict) else ''}")
        try:
            self.model.load_state_dict(s["model"])
        except RuntimeError as exc:  # another model's weights, or another size's
            first = str(exc).strip().splitlines()
            detail = " ".join(line.strip() for line in first[:3])[:300]
            raise RaygenError(f"this state does not fit this trial's {self.config.get('model')!r} model: {detail}"
                              ) from None
        self.epoch, self.train_time = s["epoch"], s["train_time"]
        self.train_cpu = float(s.get("train_cpu", 0.0))  # absent from checkpoints of older runs
        self.resumed_from_epoch = self.epoch
        self.history = list(s.get("history", []))
        if "opts" not in s:  # a final state (``state(final=True)``): the model as trained
            return
        for k, o in self.opts.items():
            o.load_state_dict(s["opts"][k])
        self.batch_rng.set_state(s["batch_rng"])
        torch.set_rng_state(s["torch_rng"])
        n = s["numpy_rng"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
        random.setstate(s["python_rng"])
        if s.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(s["cuda_rng"])
