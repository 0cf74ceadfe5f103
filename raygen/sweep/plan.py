"""A sweep file and the command line resolved once into the run's trials.

``make_plan`` expands the grid, splits every config into the trainer's and the model's
settings (building each distinct model on PyTorch's meta device, so its own checks run
without allocating anything), groups the trials into stacks and names what tells them
apart. Every later step (the data check, the tuner, the console, the rows of trials that
never started) reads the plan instead of expanding the sweep again.
"""
from __future__ import annotations

import dataclasses
import json
import zlib
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from raygen.core.errors import RaygenError
from raygen.core.registry import DATASETS, MODELS
from raygen.engine.config import batch_refusal, split_config
from raygen.engine.stacking import stackable
from raygen.record.keys import Kind
from raygen.record.transport import stacked_config
from raygen.sweep.spec import SEARCH_SPACES, Sweep, first_value


@dataclass(frozen=True)
class Plan:
    sweep: Sweep
    smoke: bool = False
    sets: dict[str, Any] = field(default_factory=dict)
    # every trial's config (a grid), or one representative config of an Optuna space
    configs: list[dict[str, Any]] = field(default_factory=list)
    splits: list[tuple] = field(default_factory=list)  # (TrainConfig, model class, model Config) per config
    stacks: list[list[dict[str, Any]]] = field(default_factory=list)  # grid trials grouped into Ray trials
    not_stacked: list[str] = field(default_factory=list)  # why groups that could have stacked did not
    probed: list[str] = field(default_factory=list)  # ``stack: auto``: each probe's figures and decision
    keys: list[str] = field(default_factory=list)  # what tells the trials apart: the model and the swept keys

    @property
    def is_grid(self) -> bool:
        return self.sweep.search == "grid"

    def tune_configs(self) -> list[dict[str, Any]]:
        """The grid's Ray trials as Tune configs: one per trial, or per stack (its members in ``_stack``)."""
        return [stacked_config(g) for g in self.stacks]

    def stack_line(self) -> str | None:
        """``stack: 10 trials as 2 Ray trials (stacks of 5)``, for a sweep that asks to stack."""
        if not self.sweep.stack:
            return None
        sizes = sorted({len(g) for g in self.stacks if len(g) > 1})
        return (f"stack: {sum(len(g) for g in self.stacks)} trials as {len(self.stacks)} Ray trials"
                + (f" (stacks of {', '.join(map(str, sizes))})" if sizes else " (none stacked)")
                + "".join(f"; not stacked: {w}" for w in self.not_stacked)
                + "".join(f"; {w}" for w in self.probed))


def make_plan(sweep: Sweep, smoke: bool = False, sets: dict[str, Any] | None = None,
              stack: str | None = None, only: dict[str, list[Any]] | None = None,
              budget: int | None = None) -> Plan:
    """Check and resolve ``sweep`` with ``--smoke``, ``--set``, ``--stack``, ``--only`` and
    ``--budget`` (a RaygenError names the first problem)."""
    sets = dict(sets or {})
    sweep = sweep.with_stack(stack).with_budget(budget)
    sweep.check(smoke, sets)
    check_stack_keys(sweep)
    configs = select(sweep.configs(smoke, sets), only or {})
    if sweep.budget is not None:
        configs = budget_draws(configs, sweep.budget, sweep.where)
    splits = split_all(configs, sweep.where)
    configs = [typed(c, *split[::2]) for c, split in zip(configs, splits)]
    if sweep.search == "optuna":
        check_range_types(sweep, smoke, sets, splits)
        check_space_values(sweep, smoke, sets)
    if not smoke and sweep.smoke:  # --smoke's settings are checked on every run, not first on a smoke run
        split_all([{k: first_value(v) for k, v in spec.items()} for spec in sweep.variant_specs(True, sets)],
                  f"{sweep.where}: smoke")
    check_metrics(sweep)
    stacks, not_stacked = group_stacks(configs, stack_keys(sweep)) if sweep.search == "grid" else ([], [])
    return Plan(sweep=sweep, smoke=smoke, sets=sets, configs=configs, splits=splits, stacks=stacks,
                not_stacked=not_stacked, keys=trial_keys(sweep, configs, smoke, sets))


def cost_key(config: dict[str, Any]) -> str:
    """What a step's cost depends on: the model, the data, the batch and every setting but the
    floats (loss weights, learning rates) and the seed."""
    train, _, model_cfg = split_config(config)
    shape = {k: v for k, v in dataclasses.asdict(model_cfg).items() if not isinstance(v, float)}
    return json.dumps([config.get("model"), train.dataset, train.batch_size, train.train_precision, shape],
                      sort_keys=True, default=str)


def probe_stacks(plan: Plan, device, data_root: str | None, threads: int | None = None) -> Plan:
    """``stack: auto``: a group stays stacked only where a short probe (``stack_probe.probe``) on
    ``device`` (with a trial's ``threads``) measures it at least ``PAYS`` times faster than its
    trials one after another; one probe per network, batch and data (``cost_key``). Other stack settings name their keys
    and stack as asked."""
    from raygen.engine.stack_probe import PAYS, probe

    if plan.sweep.stack != "auto" or not any(len(g) > 1 for g in plan.stacks):
        return plan
    stacks, said, gains = [], [], {}
    for group in plan.stacks:
        if len(group) == 1:
            stacks.append(group)
            continue
        key = cost_key(group[0])
        if key not in gains:
            stacked, alone, k = probe(group, device, data_root, threads=threads)
            gains[key] = k * alone / stacked
            verdict = "stacked" if gains[key] >= PAYS else f"not stacked (below {PAYS}x)"
            said.append(f"{group[0]['model']} {verdict}: a probe on {device} ran {k} stacked at "
                        f"{stacked * 1e3:.2f} ms a step against {alone * 1e3:.2f} ms for one alone, {gains[key]:.2f}x")
        stacks.extend([group] if gains[key] >= PAYS else [[c] for c in group])
    return dataclasses.replace(plan, stacks=stacks, probed=said)


def select(configs: list[dict[str, Any]], only: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The configs whose value of each ``only`` key is one of its values (``--only``)."""
    before: list[str] = []
    for key, values in only.items():
        wanted = {json.dumps(v, default=str) for v in values}
        kept = [c for c in configs if json.dumps(c.get(key), default=str) in wanted]
        given = f"--only {key}={','.join(map(str, values))}"
        if not kept and not any(key in c for c in configs):
            left = f" left by {' '.join(before)}" if before else ""
            raise RaygenError(f"{given}: no trial{left} sets {key}; the keys they set: "
                              f"{', '.join(sorted({k for c in configs for k in c}))}")
        if not kept:
            there = sorted({json.dumps(c.get(key), default=str) for c in configs})
            which = f"none of the trials left by {' '.join(before)}" if before else "no trial of the sweep"
            raise RaygenError(f"{given}: {which} has it; {key} there: {', '.join(there)}")
        configs = kept
        before.append(given)
    return configs


def split_all(configs: list[dict[str, Any]], where: str) -> list[tuple]:
    """Each config split once; each distinct model built once on the meta device."""
    import torch

    built, out = {}, []
    for cfg in configs:
        try:
            train, model_cls, model_cfg = split_config(cfg)
            data = DATASETS.get(train.dataset)
            key = (model_cls, repr(model_cfg), data.shape)
            if key not in built:  # the model's own checks, on the data's shape, allocating nothing
                with torch.device("meta"):
                    built[key] = model_cls(model_cfg, data.shape, data.num_classes)
            why = batch_refusal(built[key], train)
            if why:
                raise RaygenError(why)
        except RaygenError as exc:
            raise RaygenError(f"{where}: {exc}") from None
        except Exception as exc:  # a model's own construction failing on these settings
            raise RaygenError(f"{where}: model {cfg.get('model')!r} cannot be built with these settings "
                              f"({type(exc).__name__}: {exc}); check its sizes and options") from None
        out.append((train, model_cls, model_cfg))
    return out


def typed(config: dict[str, Any], train, model_cfg) -> dict[str, Any]:
    """``config`` with each scalar setting as its declared type (``"1e-3"`` -> 0.001, ``3.0`` ->
    3 epochs), so the results store what trained; ranges and lists are left as written."""
    out = dict(config)
    names = [{f.name for f in fields(obj)} for obj in (train, model_cfg)]
    for key, value in config.items():
        if isinstance(value, (str, int, float)):
            for obj, own in zip((train, model_cfg), names):
                declared = getattr(obj, key) if key in own else None
                if isinstance(declared, (bool, int, float)) and type(declared) is not type(value):
                    out[key] = declared
    return out


def budget_draws(configs: list[dict[str, Any]], budget, where: str) -> list[dict[str, Any]]:
    """Each configuration as ``budget.trials`` random draws of its model's ``search_space``
    (the keys the sweep file leaves unset), the same draws whatever else the sweep holds: each
    configuration seeds its own stream."""
    out = []
    for c in configs:
        cls = MODELS.get(str(c.get("model", "vae_conv")))
        space = {k: v for k, v in cls.search_space.items() if k not in c}
        rng = np.random.default_rng([budget.seed, zlib.crc32(json.dumps(c, sort_keys=True, default=str).encode())])
        extra = {"validation": budget.validation} if budget.select_on == "validation" else {}
        if extra and c.get("validation") not in (None, budget.validation):  # else overwritten unsaid
            raise RaygenError(f"{where}: validation={c['validation']} is the budget's to set (budget: {{validation: "
                              f"{budget.validation}}}, the images it chooses on); change it there")
        for _ in range(budget.trials):
            out.append({**c, **extra, **{k: draw(rng, spec, f"{where}: {cls.registry_name}.search_space {k}")
                                         for k, spec in space.items()}})
    return out


def draw(rng, spec: dict, where: str) -> Any:
    """One value of a range form: uniform/loguniform [lo, hi], randint [lo, hi), choice [...]."""
    (kind, arg), = spec.items()
    if kind == "choice":
        return arg[int(rng.integers(len(arg)))]
    lo, hi = arg
    if kind == "uniform":
        return float(rng.uniform(lo, hi))
    if kind == "loguniform":
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    if kind == "randint":
        return int(rng.integers(lo, hi))
    raise RaygenError(f"{where}: {kind} is not a range form ({', '.join(SEARCH_SPACES)})")


def check_range_types(sweep: Sweep, smoke: bool, sets: dict[str, Any], splits: list[tuple]) -> None:
    """A continuous range (uniform, loguniform) over a whole-number setting would fail in every
    trial Optuna draws: say so before anything starts."""
    (spec,) = sweep.variant_specs(smoke, sets)
    for train, _, model_cfg in splits:
        for key, v in spec.items():
            kind = next(iter(v), None) if isinstance(v, dict) else None
            value = getattr(train, key, getattr(model_cfg, key, None))
            if kind in ("uniform", "loguniform") and isinstance(value, int) and not isinstance(value, bool):
                raise RaygenError(f"{sweep.where}: {key} is a whole number, but {kind} draws fractions; "
                                  f"use {{randint: [lo, hi]}} or {{choice: [...]}}")


def check_space_values(sweep: Sweep, smoke: bool, sets: dict[str, Any]) -> None:
    """Every value an Optuna space can give, checked as a trial would check it: each choice, and
    each range's two ends (one key moved at a time from the representative config)."""
    (spec,) = sweep.variant_specs(smoke, sets)
    base = {k: first_value(v) for k, v in spec.items()}
    for key, v in spec.items():
        if not isinstance(v, dict):
            continue
        kind, arg = next(iter(v.items()))
        # the representative holds the first choice and the range's low end; randint excludes hi
        values = arg[1:] if kind == "choice" else [arg[1] - 1] if kind == "randint" else [arg[1]]
        for value in values:
            try:
                split_all([{**base, key: value}], sweep.where)
            except RaygenError as exc:
                raise RaygenError(f"{exc} ({key}: {kind} {arg!r} reaches {value!r}; every value it can give must be "
                                  f"allowed)") from None


RANKABLE = (Kind.METRIC, Kind.LOSS, Kind.TIME, Kind.COUNT)  # the kinds of column a sweep can rank or schedule by


def check_metrics(sweep: Sweep) -> None:
    """``metric:`` (and the scheduler's) name a numeric column the trials report (``kind_of``: a
    model's loss, a metric family's column or its validation twin, a time, a count): an
    unknown one ranks nothing, and ASHA would stop no trial."""
    from raygen.core.errors import did_you_mean
    from raygen.metrics.evaluate import declared_kinds
    from raygen.record import keys

    declared = declared_kinds()
    asha = (sweep.scheduler or {}).get("asha") or {}
    for where, name in (("metric", sweep.metric), ("scheduler asha: metric", asha.get("metric"))):
        if name is not None and keys.kind_of(name, declared) not in RANKABLE:
            known = {**keys.FIXED, **declared}
            ranked = sorted(k for k, kind in known.items() if kind in RANKABLE)
            raise RaygenError(f"{sweep.where}: {where}: {name!r} is no number a trial reports."
                              f"{did_you_mean(name, ranked)} Losses and metrics: "
                              f"{', '.join(k for k in ranked if known[k] in (Kind.METRIC, Kind.LOSS))}; "
                              f"also any of them with val_ before it, and times and counts (e.g. train_time_s)")


def weight_keys() -> set[str]:
    """What may differ within a stack: the seed and every model's loss weights."""
    return {"seed", *(w for _, cls in MODELS.items() for w in cls.stack_weights)}


def stack_keys(sweep: Sweep) -> set[str]:
    return weight_keys() if sweep.stack == "auto" else set(sweep.stack or ())


def check_stack_keys(sweep: Sweep) -> None:
    bad = sorted(set(sweep.stack if isinstance(sweep.stack, list) else ()) - weight_keys())
    if bad:
        raise RaygenError(f"{sweep.where}: stack: {', '.join(bad)} cannot differ within a stack (it changes what is "
                          f"trained); keys that can: {', '.join(sorted(weight_keys()))}; or auto (those that pay), "
                          f"or none")


def group_stacks(configs: list[dict[str, Any]], free: set[str]) -> tuple[list[list[dict]], list[str]]:
    """The configs grouped into stacks (trials equal but for the ``free`` keys, when
    ``stacking.stackable`` agrees; one config a group otherwise), and why groups that could
    not stack did not."""
    if not free:
        return [[c] for c in configs], []
    groups: dict[str, list[dict]] = {}
    for c in configs:
        groups.setdefault(json.dumps({k: v for k, v in c.items() if k not in free}, sort_keys=True,
                                     default=str), []).append(c)
    out, why_not = [], []
    for group in groups.values():
        why = stackable(group) if len(group) > 1 else None
        if len(group) > 1 and why is None:
            out.append(group)
        else:
            out.extend([c] for c in group)
            if why:
                why_not.append(why)
    return out, sorted(set(why_not))


def trial_keys(sweep: Sweep, configs: list[dict[str, Any]], smoke: bool, sets: dict[str, Any]) -> list[str]:
    """What tells the sweep's trials apart: the model and every swept key (a grid's varying
    keys; an Optuna space's ranges)."""
    if sweep.search == "grid":
        return swept_keys(configs)
    (spec,) = sweep.variant_specs(smoke, sets)
    ranged = [k for k, v in spec.items() if isinstance(v, dict) and next(iter(v), None) in SEARCH_SPACES]
    return ["model", *[k for k in ranged if k != "model"]]


def swept_keys(configs: list[dict[str, Any]]) -> list[str]:
    """``model`` and every key whose value differs between the sweep's configurations."""
    keys = list(dict.fromkeys(k for c in configs for k in c))
    varied = [k for k in keys if len({repr(c.get(k)) for c in configs}) > 1]
    return ["model", *[k for k in varied if k != "model"]]
