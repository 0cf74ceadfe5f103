"""Stacked trials: K trials that share an architecture trained as one vectorised model.

Trials that differ only in ``seed`` and in float loss weights (the model's ``stack_weights``,
e.g. ``beta``) train the same network on the same data, one small step at a time: on a CPU
or a GPU one step of K stacked copies costs little more than one. ``StackedTrial`` builds
each trial as an ordinary ``Trial`` (``members``: same seed, same init, own batch order,
history and output folder), stacks their parameters (``torch.func.stack_module_state``),
and trains them with one fused Adam over the stacked leaves. A fully connected network runs
as one model with a leading member axis (``raygen.engine.batched``: one ``baddbmm`` per
layer, the model's loss computed once for all members); any other (convolutions) through
one ``torch.vmap`` over ``functional_call(model.loss)``, which pays per op and per call.
Adam is elementwise and the K parameter sets are disjoint, so
one optimizer over the sum of the K losses takes each member's own step; each member's
noise (the VAE's reparameterisation, InfoVAE's prior draws) comes from its own torch RNG
stream in the order the unstacked trial draws it. The numbers are those of the unstacked
trials up to float rounding (batched matrix products round differently).

A member ends (last epoch, a non-finite loss, GAE's delta with ``stop_at_delta``) through
its own ``Trial.end_epoch`` after its weights are written back, exactly as it would alone;
the stack is then rebuilt from the members still running. Evaluations go the same way.

Which models stack (``GenerativeModel.stackable``): the ``BaseVAE`` family whose step is one
optimizer over ``loss`` (vae_conv, vae_mlp, vae, beta_vae, info_vae, wae, ae, rae_l2, gae;
a model whose ``on_epoch_end`` measures its steps, GAE's delta, says so in
``stack_observes_steps`` and gets each member's losses through ``observe_step``). Not:
gan_dcgan and gan_mlp (two alternating optimizers), vae_gan (three), savae (a pretraining
phase in on_train_start, then two optimizers), vade (pretrains an autoencoder and fits a GMM
in on_train_start), vamp_vae (data copied into its pseudo-inputs on_train_start, a KL
warm-up on_epoch_end), gmvae (its two reparameterisations bypass the noise hook). Networks
with batch normalisation (arch: resnet) or dropout are refused too: their running
statistics and random masks are per-call state that ``vmap`` cannot carry per member.
"""
from __future__ import annotations

import copy
import math
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state

from raygen.core.errors import RaygenError
from raygen.engine import precision
from raygen.engine.batched import batchable, batched_copy, io_layout, linear_weights
from raygen.engine.config import split_config
from raygen.engine.trial import Trial, usable_device
from raygen.models.base import adam
from raygen.record import keys
from raygen.record.transport import given_config

# Trainer keys that may differ between stacked trials (the rest shape the training itself).
FREE_TRAIN_KEYS = ("seed",)


def stackable(configs: list[dict[str, Any]]) -> str | None:
    """None when ``configs`` can train as one ``StackedTrial``; else one line saying why not."""
    if not isinstance(configs, (list, tuple)) or not all(isinstance(c, dict) for c in configs):
        return f"give a list of trial configs (dicts), got {type(configs).__name__}"
    if not configs:
        return "no trials to stack"
    try:
        parsed = [split_config(given_config(c)) for c in configs]
    except RaygenError as exc:
        return str(exc)
    cls = parsed[0][1]
    names = {p[1].registry_name for p in parsed}
    if len(names) > 1:
        return f"model differs ({', '.join(sorted(names))}); stacked trials share one model"
    if not cls.stackable:
        return f"{cls.registry_name} {cls.stack_refusal}"
    for part, free in ((0, FREE_TRAIN_KEYS), (2, cls.stack_weights)):
        first = asdict(parsed[0][part])
        for p in parsed[1:]:
            for key, value in asdict(p[part]).items():
                if value != first[key] and key not in free:
                    allowed = ", ".join((*FREE_TRAIN_KEYS, *cls.stack_weights))
                    return (f"{key} differs ({first[key]!r} vs {value!r}); stacked {cls.registry_name} trials "
                            f"may differ only in {allowed}")
    return None


class _Stream:
    """One member's global RNG streams (torch's on the device, numpy's, Python's) while the
    others train; ``gen`` draws its loss noise between ``save`` and ``load``."""

    def __init__(self, device: torch.device):
        self.device = device
        self.gen = torch.Generator(device=device)
        self.save()

    def save(self) -> None:
        """Global streams -> this member's."""
        if self.device.type == "cuda":
            self.gen.set_state(torch.cuda.get_rng_state(self.device))
            self.cpu = torch.get_rng_state()
        else:
            self.gen.set_state(torch.get_rng_state())
        self.np, self.py = np.random.get_state(), random.getstate()

    def load(self) -> None:
        """This member's streams -> the global ones."""
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(self.gen.get_state(), self.device)
            torch.set_rng_state(self.cpu)
        else:
            torch.set_rng_state(self.gen.get_state())
        np.random.set_state(self.np)
        random.setstate(self.py)


class _Loss(nn.Module):
    """``model.loss`` as a module call, for ``functional_call``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.loss(x, y)


def _uses_model(m: Trial, losses: dict[str, float], extra: dict[str, Any]) -> bool:
    """Whether ``m.end_epoch`` will touch the model this epoch (finish or evaluate)."""
    c = m.cfg
    numbers = [*losses.values(), *(v for v in extra.values() if isinstance(v, float))]
    return (m.epoch >= c.epochs or bool(extra.get(keys.CONVERGED)) or bool(c.eval_every and m.epoch % c.eval_every == 0)
            or not all(math.isfinite(v) for v in numbers))


def _finished(m: Trial) -> bool:
    """A member's end as its history shows it (states saved without the stack's record)."""
    last = m.history[-1] if m.history else {}
    return m.epoch >= m.cfg.epochs or not all(math.isfinite(v) for v in last.values() if isinstance(v, float))


class StackedTrial:
    """K ``Trial``s trained as one vectorised model (see the module docstring). The stacked
    parameters are the live ones: a member's own model holds its weights after ``state()``,
    an evaluation or its end."""

    def __init__(self, configs: list[dict[str, Any]], device: torch.device | str = "cpu",
                 data_root: str | None = None, out_dirs: list[str | os.PathLike | None] | None = None,
                 sweep_dir: str | os.PathLike | None = None, vmap: bool = False):
        why = stackable(configs)
        if why:
            raise RaygenError(f"these trials cannot be stacked: {why}")
        out_dirs = list(out_dirs) if out_dirs is not None else [None] * len(configs)
        if len(out_dirs) != len(configs):
            raise RaygenError(f"{len(configs)} configs but {len(out_dirs)} out_dirs")
        self.device = usable_device(device)
        self.members: list[Trial] = []
        self._streams: list[_Stream] = []
        for config, out_dir in zip(configs, out_dirs):
            # Each Trial seeds the global RNGs and builds its model: its streams start here.
            self.members.append(Trial(config, device=self.device, data_root=data_root, out_dir=out_dir,
                                      sweep_dir=sweep_dir))
            self._streams.append(_Stream(self.device))
        self.base = copy.deepcopy(self.members[0].model)  # the module the stacked parameters run through
        stateful = sorted({type(mod).__name__ for mod in self.base.modules()
                           if isinstance(mod, (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd))})
        if stateful:
            raise RaygenError(f"these trials cannot be stacked: the network has {', '.join(stateful)} "
                              "(per-call state vmap cannot keep per member)")
        self._call = _Loss(self.base)
        # native batched layers where the network allows (``vmap``: the general path, for comparison)
        self.batched = not vmap and batchable(self.base) is None
        self.net: nn.Module | None = None  # the batched model over the stacked parameters
        self._noise_shapes: dict[tuple, list[tuple[torch.Size, torch.dtype]]] = {}
        self.finished = [False] * len(self.members)
        self._stack()

    @property
    def done(self) -> bool:
        return all(self.finished)

    # --- stacking ----------------------------------------------------------------------
    def _stack(self) -> None:
        """Stacked parameters and one Adam (with the members' Adam state) from the running members."""
        self.active = [k for k, f in enumerate(self.finished) if not f]
        trials = [self.members[k] for k in self.active]
        params, _ = stack_module_state([t.model for t in trials])  # {name: (K, ...)} leaves, named_parameters order
        transposed = linear_weights(self.base) if self.batched else set()
        if self.batched:
            params = {n: nn.Parameter(io_layout(p) if n in transposed else p) for n, p in params.items()}
            self.params = params
        else:
            self.params = {f"model.{n}": p for n, p in params.items()}
        group = trials[0].opts["opt"].param_groups[0]
        self.opt = adam(list(self.params.values()), lr=group["lr"], betas=group["betas"])
        for name, sp in zip(params, self.params.values()):
            states = [t.opts["opt"].state.get(dict(t.model.named_parameters())[name]) for t in trials]
            if all(s is None for s in states):
                continue
            if any(s is None for s in states) or len({float(s["step"]) for s in states}) > 1:
                raise RaygenError("stacked members must be at the same optimizer step")
            layout = io_layout if name in transposed else (lambda t: t)  # the moments as their parameter
            self.opt.state[sp] = {key: layout(torch.stack([s[key] for s in states])) if v.dim() else v.clone()
                                  for key, v in states[0].items()}
        self.weights = self._weights(trials)
        if self.batched:
            self.net = batched_copy(self.base, params)
            self.net.cfg = copy.copy(self.base.cfg)
            for key, w in self.weights.items():
                setattr(self.net.cfg, key, w)  # (K,): each member's weight on its own (K,) terms
            self.net.noise_source = self._members_noise

    def _weights(self, trials: list[Trial]) -> dict[str, torch.Tensor]:
        """The loss weights that differ between members, (K,) each: batched in place of the config's float."""
        out = {}
        for key in type(self.base).stack_weights:
            values = [float(getattr(t.model.cfg, key)) for t in trials]
            if len(set(values)) > 1:
                out[key] = torch.tensor(values, dtype=torch.get_default_dtype(), device=self.device)
        return out

    @torch.no_grad()
    def _write_back(self, only: int | None = None, params_only: bool = False) -> None:
        """The stacked parameters (and Adam state) of running members into their own models."""
        for i, k in enumerate(self.active):
            if only is not None and k != only:
                continue
            trial = self.members[k]
            named, opt = dict(trial.model.named_parameters()), trial.opts["opt"]
            for name, sp in self.params.items():
                p = named[name.removeprefix("model.")]
                p.copy_(sp[i])
                state = None if params_only else self.opt.state.get(sp)
                if state:
                    opt.state[p] = {key: (v[i] if v.dim() else v).clone(memory_format=torch.contiguous_format)
                                    for key, v in state.items()}

    @contextmanager
    def _as_member(self, k: int) -> Iterator[None]:
        """Member ``k``'s RNG streams as the global ones (hooks, evaluation, ``Trial.state``)."""
        self._streams[k].load()
        try:
            yield
        finally:
            self._streams[k].save()

    # --- one step ----------------------------------------------------------------------
    def _noise_plan(self, x: torch.Tensor, y: torch.Tensor) -> list[tuple[torch.Size, torch.dtype]]:
        """Shapes of the noise one member's loss draws, in order (recorded once per batch shape)."""
        key = tuple(x.shape[1:])
        if key not in self._noise_shapes:
            plan: list[tuple[torch.Size, torch.dtype]] = []

            def record(shape, like):
                plan.append((torch.Size(shape), like.dtype))
                return torch.zeros(shape, dtype=like.dtype, device=like.device)

            self.base.noise_source = record
            try:
                with torch.no_grad():
                    self.base.loss(x[0], y[0])
            finally:
                self.base.noise_source = None
            self._noise_shapes[key] = plan
        return self._noise_shapes[key]

    def _members_noise(self, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
        """(K, *shape[1:]) draws for the batched model: each member's from its own generator,
        in the order its unstacked loss draws them."""
        return torch.stack([torch.randn(shape[1:], dtype=like.dtype, device=like.device, generator=self._streams[k].gen)
                            for k in self.active])

    def _member_loss(self, params, weights, noise, x, y) -> dict[str, torch.Tensor]:
        """One member's ``loss`` (called under vmap): its parameters, loss weights and noise."""
        draws = iter(noise)
        base, cfg = self.base, self.base.cfg
        base.noise_source = lambda shape, like: next(draws)
        if weights:
            base.cfg = copy.copy(cfg)
            for key, w in weights.items():
                setattr(base.cfg, key, w)
        try:
            return functional_call(self._call, params, (x, y))
        finally:
            base.cfg, base.noise_source = cfg, None

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """One step of every running member on its batch, x (K, B, ...): (K,) losses."""
        if self.net is not None:
            out = self.net.loss(x, y)
        else:
            # Each member's draws come from its own generator in the loss's order (generators are
            # independent, so drawing draw j for all members before draw j + 1 keeps every order).
            gens = [self._streams[k].gen for k in self.active]
            noise = [torch.stack([torch.randn(shape, dtype=dtype, device=self.device, generator=g) for g in gens])
                     for shape, dtype in self._noise_plan(x, y)]  # each (K, *shape)
            out = torch.vmap(self._member_loss, randomness="error")(self.params, self.weights, noise, x, y)
        # Parameters are disjoint: the sum's gradient is each member's own.
        self.opt.zero_grad(set_to_none=True)
        out["loss"].sum().backward()
        self.opt.step()
        return {k: v.detach() for k, v in out.items()}

    # --- epochs --------------------------------------------------------------------------
    def train_epoch(self) -> list[dict[str, Any] | None]:
        """One epoch of every running member: its ``Trial.train_epoch`` result (None for members
        that finished before this epoch)."""
        results: list[dict[str, Any] | None] = [None] * len(self.members)
        if self.done:
            return results
        trials = [self.members[k] for k in self.active]
        for t in trials:
            t.begin_epoch()
        c, data = trials[0].cfg, trials[0].data.train
        observe = type(self.base).stack_observes_steps  # the model asks for its steps' losses
        net = self.net or self.base  # only ever trained (members evaluate): set once, not per epoch
        if not net.training:
            net.train()
        t0, cpu0 = time.perf_counter(), time.process_time()
        sums: dict[str, torch.Tensor] = {}
        n = 0
        batches = [data.batch_indices(c.batch_size, t.batch_rng, c.max_batches or None) for t in trials]
        for idx in zip(*batches):
            idx = torch.stack(idx)  # (K, B): each member's own batch
            with precision.steps(c.train_precision, self.device):  # per step, as Trial's
                out = self._step(data.x[idx], data.y[idx])
            for key, v in out.items():
                sums[key] = sums[key] + v.float() if key in sums else v.float().clone()
            if observe:
                rows = {key: v.unbind() for key, v in out.items()}  # K views per key: one op, not K
                for i, t in enumerate(trials):
                    t.model.observe_step({key: v[i] for key, v in rows.items()})
            n += 1
        extras = [t.model.on_epoch_end(t.epoch, t.data) for t in trials]
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        # Per-member timing: the stacked epoch's time shared equally by the members it trained.
        dt = (time.perf_counter() - t0) / len(trials)
        cpu = (time.process_time() - cpu0) / len(trials)
        means = {key: v.tolist() for key, v in sums.items()}
        ended = False
        for i, (k, t) in enumerate(zip(list(self.active), trials)):
            losses = {key: v[i] / max(n, 1) for key, v in means.items()}
            if _uses_model(t, losses, extras[i]):  # its hooks and evaluation see its weights and RNG streams
                self._write_back(only=k, params_only=True)
                with self._as_member(k):
                    result = t.end_epoch(losses, n, dt, {}, extras[i], cpu)
            else:
                result = t.end_epoch(losses, n, dt, {}, extras[i], cpu)
            result[keys.STACKED] = len(self.members)  # how many trials shared the model
            results[k] = t.record(result)
            if result.get(keys.DONE):
                self.finished[k] = ended = True
        if ended:
            self._write_back()  # the finished members keep their final weights and Adam state
            if not self.done:
                self._stack()
        return results

    def fit(self) -> list[dict[str, Any]]:
        """Train every member to its end; each member's last result."""
        last: list[dict[str, Any] | None] = [None] * len(self.members)
        while not self.done:
            for k, r in enumerate(self.train_epoch()):
                if r is not None:
                    last[k] = r
        return last

    # --- state -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """``{"members": [...]}``: each member's ``Trial.state()`` as its unstacked trial would hold
        it (weights, Adam state and RNG streams written back), so one member resumes alone;
        ``finished`` records which members have ended."""
        if not self.done:
            self._write_back()
        members = []
        for k, t in enumerate(self.members):
            with self._as_member(k):
                members.append(t.state())
        return {"members": members, "finished": list(self.finished)}

    def load_state(self, s: dict[str, Any]) -> None:
        if not isinstance(s, dict) or "members" not in s:
            raise RaygenError("StackedTrial.load_state takes what StackedTrial.state() returned ({'members': ...}); "
                              "a single trial's state loads into its Trial")
        if len(s["members"]) != len(self.members):
            raise RaygenError(f"a state of {len(s['members'])} members for a stack of {len(self.members)}")
        for k, (t, ms) in enumerate(zip(self.members, s["members"])):
            t.load_state(ms)  # sets the global RNG streams to this member's
            self._streams[k].save()
        self.finished = list(s.get("finished") or [_finished(t) for t in self.members])
        if not self.done:
            self._stack()
