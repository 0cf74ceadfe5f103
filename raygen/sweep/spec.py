"""Sweep files (``sweeps/NAME.yaml``, safe YAML) -> validated trial configs / Tune space.

A sweep file::

    description: one line for --list
    search: grid              # grid (default) | optuna
    metric: recon_mse         # what "best" means (and what Optuna / ASHA optimise)
    mode: min
    num_samples: 20           # optuna only
    resources: {cpus_per_trial: 1, gpus_per_trial: 0.25}
    max_concurrent: 8
    config:                   # every trial; {grid: [...]} makes a grid dimension
      dataset: mnist
      seed: {grid: [0, 1, 2]}
    variants:                 # optional: each is merged over config (grid only)
      - {model: gan_dcgan}
      - {model: vae_conv, latent_dim: {grid: [2, 10, 32]}}
    smoke: {epochs: 1}        # extra overrides for --smoke

Optuna takes ranges: {uniform: [lo, hi]}, {loguniform: [lo, hi]}, {randint: [lo, hi]},
{choice: [...]}. This module reads and checks the file's own form (no torch, no Ray: ``--list``
and ``--help`` stay instant); ``sweep.plan`` then resolves it with the command line into the
run's trials, checking every config against the trainer's and the model's keys before Ray
starts, so a typo fails in a second, not after a cluster spins up.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from raygen.core.errors import RaygenError, did_you_mean
from raygen.core.settings import allowed, from_dict, setting
from raygen.record import published as paper

SWEEPS_DIR = Path(__file__).resolve().parent.parent / "sweeps"  # package data: raygen/sweeps/
SEARCH_SPACES = ("uniform", "loguniform", "randint", "choice")
# --smoke: a few batches, one epoch, small evaluation, so any sweep finishes in minutes on a CPU.
SMOKE = {"epochs": 1, "max_batches": 4, "eval_samples": 200, "limit": 2000, "eval_every": 0}
MAX_TRIALS = 100_000  # a larger grid is a typo, and its configs alone would fill memory
ASHA_KEYS = ("metric", "mode", "grace_period", "max_t", "reduction_factor", "brackets")


@dataclass(frozen=True)
class Budget:
    """``budget: {trials: 8, search: random, seed: 0, select_on: validation, validation: 1000}``."""
    trials: int = setting(8, ge=1, le=10_000)
    # Lucic et al. 2018 draw configurations at random; sequential (TPE) draws are not offered
    search: str = setting("random", choices=("random",))
    seed: int = setting(0, ge=0, le=2**32 - 1)
    # validation: choose on val_<metric> (validation images carved from the training split) and
    # report the held-out split; holdout: choose on the reported numbers themselves (optimistic)
    select_on: str = setting("validation", choices=("validation", "holdout"))
    validation: int = setting(1000, ge=1)


INTERNAL = ("name", "path")  # Sweep fields raygen fills from the file itself, never keys of it


@dataclass
class Sweep:
    name: str
    description: str = ""
    search: str = setting("grid", choices=("grid", "optuna"))
    metric: str = "loss"
    mode: str = setting("min", choices=("min", "max"))
    num_samples: int = setting(1, ge=1, le=MAX_TRIALS)
    resources: dict[str, float] = field(default_factory=lambda: {"cpus_per_trial": 1, "gpus_per_trial": 0})
    max_concurrent: int = setting(0, ge=0)
    max_failures: int = setting(2, ge=0, le=100)
    # a running trial whose worker is silent this long (no heartbeat: stopped, frozen) is failed
    # and retried (raygen.sweep.liveness); beats come every 2 s, through any epoch or evaluation
    stall_seconds: float = setting(300.0, ge=5, le=86_400)
    scheduler: dict[str, Any] | None = None  # {asha: {metric: loss, grace_period: 2}}
    config: dict[str, Any] = field(default_factory=dict)
    variants: list[dict[str, Any]] = field(default_factory=list)
    smoke: dict[str, Any] = field(default_factory=dict)
    paper: dict[str, Any] | None = None  # the published values this sweep reproduces (raygen.record.published)
    # experiment trackers (raygen.sweep.callbacks.trackers): {mlflow: {...}, wandb: {...}}
    track: dict[str, Any] | None = None
    # Trials that differ only in these keys train as one stacked model (raygen.engine.stacking):
    # [seed], [seed, beta], or auto (seed and every model's loss weights)
    stack: list[str] | str | None = None
    # Equal tuning effort (Lucic et al. 2018): every grid configuration becomes `trials` draws of
    # its model's search_space, chosen on a validation split carved from the training data.
    budget: Budget | None = None
    path: str = ""

    # --- configs -----------------------------------------------------------------------
    def variant_specs(self, smoke: bool = False, overrides: dict[str, Any] | None = None) -> list[dict]:
        specs = [{**self.config, **v} for v in (self.variants or [{}])]
        extra = {**(SMOKE if smoke else {}), **(self.smoke if smoke else {}), **(overrides or {})}
        # A scheduler compares trials at the epochs of its rungs: one report per epoch (checkpoints
        # stay on the clock), unless the sweep fixes report_every itself.
        sched = {"report_every": 1} if self.scheduler else {}
        return [{**sched, **s, **extra} for s in specs]

    def size(self, smoke: bool = False, overrides: dict[str, Any] | None = None) -> int:
        """How many trials the grid holds, counted without expanding it."""
        return sum(math.prod(len(v["grid"]) for v in spec.values() if _is_grid(v) and isinstance(v["grid"], list))
                   for spec in self.variant_specs(smoke, overrides))

    def grid(self, smoke: bool = False, overrides: dict[str, Any] | None = None) -> list[dict]:
        """Every trial config of a grid sweep (cartesian product within each variant)."""
        out = []
        for spec in self.variant_specs(smoke, overrides):
            dims = {k: v["grid"] for k, v in spec.items() if _is_grid(v)}
            fixed = {k: v for k, v in spec.items() if not _is_grid(v)}
            for combo in itertools.product(*dims.values()):
                out.append({**fixed, **dict(zip(dims, combo))})
        return out

    @property
    def where(self) -> str:
        return f"sweep {self.name!r} ({self.path})"

    def with_stack(self, stack: str | None) -> Sweep:
        """This sweep with ``--stack`` applied: a comma-separated key list, ``auto`` or ``none``
        (None: the file's own ``stack:``). A copy: the parsed sweep is never changed."""
        if stack is None:
            return self
        word = stack.strip().lower()
        keys = None if word == "none" else "auto" if word == "auto" else [k.strip() for k in stack.split(",")
                                                                           if k.strip()]
        return dataclasses.replace(self, stack=keys)

    def with_budget(self, trials: int | None) -> Sweep:
        """This sweep with ``--budget N``: N draws per configuration (None: the file's)."""
        if trials is None:
            return self
        rule = allowed(Budget, "trials", trials)
        if rule:
            raise RaygenError(f"--budget {trials}: give a whole number of draws per configuration, {rule}")
        if self.budget is None:
            raise RaygenError(f"{self.where}: --budget {trials}: this sweep has no budget: block to resize; "
                              f"add e.g. budget: {{trials: {trials}, search: random}}")
        return dataclasses.replace(self, budget=dataclasses.replace(self.budget, trials=trials))

    def check(self, smoke: bool = False, overrides: dict[str, Any] | None = None) -> None:
        """The file's own form, without torch or Ray: search kind, value forms, scheduler,
        stack, grid size, the paper block. Each config is checked by ``sweep.plan``."""
        where = self.where
        self.check_scheduler(where)
        self.check_stack(where)
        for spec in self.variant_specs(smoke, overrides):
            for k, v in spec.items():
                if isinstance(v, dict):
                    _check_value_form(where, k, v, self.search)
        if self.search == "grid" and self.size(smoke, overrides) > MAX_TRIALS:
            raise RaygenError(f"{where}: the grid holds {self.size(smoke, overrides):,} trials, more than "
                              f"{MAX_TRIALS:,}; split it into several sweeps or use search: optuna")
        if self.paper is not None:
            paper.parse(self.paper, where)
        if self.search == "optuna" and len(self.variants) > 1:
            raise RaygenError(f"{where}: Optuna searches one space; replace variants by a choice.")
        if self.budget is not None and (self.search != "grid" or self.scheduler or self.stack):
            raise RaygenError(f"{where}: budget: draws each grid configuration's hyperparameters itself; use it with "
                              f"search: grid, without scheduler: or stack:")

    def configs(self, smoke: bool = False, overrides: dict[str, Any] | None = None) -> list[dict]:
        """Every trial config of a grid; for Optuna one representative config of its space."""
        if self.search == "grid":
            return self.grid(smoke, overrides)
        return [{k: first_value(v) for k, v in s.items()} for s in self.variant_specs(smoke, overrides)]

    def check_stack(self, where: str) -> None:
        """The form of ``stack:``; which keys may differ within a stack is the models' to say
        (``sweep.plan``)."""
        if self.stack is None:
            return
        keys = self.stack if isinstance(self.stack, list) else None
        if self.stack != "auto" and (not keys or not all(isinstance(k, str) for k in keys)):
            raise RaygenError(f"{where}: stack={self.stack!r}: give a list of keys (e.g. [seed]), auto, or none "
                              f"(or leave stack: out) for no stacking")
        if self.search != "grid" or self.scheduler:
            raise RaygenError(f"{where}: stack works on grid sweeps without a scheduler (a scheduler would stop "
                              f"a stack's trials together); remove stack: or scheduler:")

    def check_scheduler(self, where: str) -> None:
        if self.scheduler is None:
            return
        if not isinstance(self.scheduler, dict) or set(self.scheduler) != {"asha"} \
                or not isinstance(self.scheduler["asha"], dict):
            raise RaygenError(f"{where}: scheduler={self.scheduler!r} is not one raygen knows; the one scheduler is "
                              f"asha: {{asha: {{metric: loss, grace_period: 2}}}}")
        bad = sorted(set(self.scheduler["asha"]) - set(ASHA_KEYS))
        if bad:
            raise RaygenError(f"{where}: scheduler asha: unknown key(s) {', '.join(bad)}."
                              f"{did_you_mean(bad[0], ASHA_KEYS)} Valid keys: {', '.join(ASHA_KEYS)}.")
        asha = self.scheduler["asha"]
        for key, integer, low in (("grace_period", True, 1), ("max_t", True, 1), ("brackets", True, 1),
                                  ("reduction_factor", False, 1)):
            v = asha.get(key)
            ok = not isinstance(v, bool) and isinstance(v, int if integer else (int, float))
            if v is not None and (not ok or not (v >= low if integer else v > low)):
                what = "a whole number >= 1" if integer else "a number > 1 (each rung keeps 1/reduction_factor)"
                raise RaygenError(f"{where}: scheduler asha: {key}={v!r} must be {what}")
        if asha.get("mode", "min") not in ("min", "max"):
            raise RaygenError(f"{where}: scheduler asha: mode={asha['mode']!r} must be min or max")
        if not isinstance(asha.get("metric", "loss"), str):
            raise RaygenError(f"{where}: scheduler asha: metric={asha['metric']!r} must be a column name, e.g. loss")
        if asha.get("grace_period", 1) > asha.get("max_t", 100):  # ASHA's own default max_t
            raise RaygenError(f"{where}: scheduler asha: grace_period={asha.get('grace_period', 1)} exceeds "
                              f"max_t={asha.get('max_t', 100)}: no trial could be stopped early")


def _check_value_form(where: str, k: str, v: dict, search: str) -> None:
    """A dict value is a grid dimension (grid sweeps) or a search range (Optuna)."""
    (kind,) = v.keys() if len(v) == 1 else (None,)
    if kind == "grid" and search == "optuna":
        raise RaygenError(f"{where}: {k} uses grid, but Optuna cannot take grid_search (Ray Tune rejects it). "
                          f"Give {k} a range ({', '.join(SEARCH_SPACES)}) or use search: grid.")
    if kind in SEARCH_SPACES and search == "grid":
        raise RaygenError(f"{where}: {k} uses {kind}, which needs search: optuna (a grid sweep takes {{grid: [...]}}).")
    if kind not in ("grid", *SEARCH_SPACES):
        raise RaygenError(f"{where}: {k}={v!r} is not a value form raygen knows; use a plain "
                          f"value, {{grid: [...]}}, or one of {', '.join(SEARCH_SPACES)}.")
    if kind == "grid" and (not isinstance(v["grid"], list) or not v["grid"]):
        raise RaygenError(f"{where}: {k}: grid needs a non-empty list, got {v['grid']!r}")
    if kind in SEARCH_SPACES:
        _check_range(where, k, kind, v[kind])


def _check_range(where: str, key: str, kind: str, arg: Any) -> None:
    """Optuna's forms: uniform/loguniform/randint take [lo, hi] with lo < hi; choice a non-empty list."""
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            raise RaygenError(f"{where}: {key}: choice needs a non-empty list, got {arg!r}")
        return
    numbers = isinstance(arg, list) and len(arg) == 2 and all(
        isinstance(x, int if kind == "randint" else (int, float)) and not isinstance(x, bool) and math.isfinite(x)
        for x in arg)
    if not numbers or arg[0] >= arg[1] or (kind == "loguniform" and arg[0] <= 0):
        low = " with 0 < lo" if kind == "loguniform" else ""
        what = "two whole numbers" if kind == "randint" else "two finite numbers"
        raise RaygenError(f"{where}: {key}: {kind} needs [lo, hi], {what} with lo < hi{low}, got {arg!r}")


def _is_grid(v: Any) -> bool:
    return isinstance(v, dict) and set(v) == {"grid"}


def first_value(v: Any) -> Any:
    """A representative value of a search-space entry, for validation."""
    if not isinstance(v, dict):
        return v
    kind, arg = next(iter(v.items()))
    return arg[0] if isinstance(arg, list) and arg else arg


def available(sweeps_dir: Path = SWEEPS_DIR) -> dict[str, str]:
    """name -> one-line description, for --list and error messages."""
    out = {}
    for p in sorted(sweeps_dir.glob("*.yaml")):
        try:
            out[p.stem] = str((safe_yaml(p.read_text(), str(p)) or {}).get("description", "")).strip()
        except (yaml.YAMLError, RaygenError):
            out[p.stem] = "(malformed YAML)"
    return out


MAX_NODES = 100_000  # a sweep file is a page of settings; far more nodes than that is an alias bomb


class Loader(yaml.SafeLoader):
    """The safe loader, reading numbers as YAML 1.2 does: PyYAML (YAML 1.1) reads ``1e-3`` (an
    exponent without a dot) as text, which people write for learning rates."""


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def _mapping(loader: Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    """A mapping whose keys are each given once: PyYAML keeps the last of two silently. Only the
    keys written in it count; those a merge (``<<: *anchor``) brings in may be overridden, as YAML
    intends."""
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag != "tag:yaml.org,2002:str":
            continue  # a merge is meant to be overridden; keys that are not names are refused later (_read)
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"{key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


Loader.add_constructor("tag:yaml.org,2002:map", lambda loader, node: _mapping(loader, node, deep=True))


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's several-line message as one: what is wrong, and where."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem


def yaml_value(text: str, where: str = "the value"):
    """One value as a sweep file reads it (``--set``, ``--only``); a RaygenError if it is not YAML."""
    try:
        return yaml.load(text, Loader=Loader)
    except yaml.YAMLError as exc:
        raise RaygenError(f"{where} is not valid YAML: {yaml_problem(exc)}") from None
    except RecursionError:
        raise RaygenError(f"{where} nests lists or mappings too deeply to read") from None


def safe_yaml(text: str, where: str):
    """``yaml.safe_load``, refusing documents whose aliases expand beyond ``MAX_NODES`` nodes
    (a "billion laughs" file is a few lines that expand to billions), counted before anything
    is built from them."""
    sizes: dict[int, int] = {}

    def size(node) -> int:  # nodes once aliases are expanded; each distinct node counted once
        if id(node) not in sizes:
            sizes[id(node)] = 0  # a recursive alias counts as small here: safe_load rejects it below
            children = node.value if isinstance(node.value, list) else []
            flat = [c for item in children for c in (item if isinstance(item, tuple) else (item,))]
            sizes[id(node)] = 1 + sum(size(c) for c in flat)
            if sizes[id(node)] > MAX_NODES:
                raise RaygenError(f"{where}: its aliases expand to more than {MAX_NODES:,} values; "
                                  f"write the settings out (a YAML alias bomb?)")
        return sizes[id(node)]

    try:
        root = yaml.compose(text, Loader=Loader)
        if root is not None:
            size(root)
    except RecursionError:
        raise RaygenError(f"{where} nests lists or mappings too deeply to read") from None
    return yaml_value(text, where)


def _read(path: Path) -> dict:
    try:
        text = path.read_text()
        if not text.strip():
            raise RaygenError(f"sweep file {path} is empty; a sweep needs at least config: {{model: ...}}")
        raw = safe_yaml(text, f"sweep file {path}")
    except yaml.YAMLError as exc:  # from compose (safe_yaml's count of aliases)
        raise RaygenError(f"sweep file {path} is not valid YAML: {yaml_problem(exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:  # a directory, a binary file, unreadable
        raise RaygenError(f"sweep file {path} cannot be read as text YAML ({type(exc).__name__}); "
                          f"give a sweep name (see --list) or a .yaml file") from None
    if not isinstance(raw, dict):
        raise RaygenError(f"sweep file {path} must be a mapping of keys (description, config, ...), "
                          f"got {type(raw).__name__}")
    odd = _non_name_key(raw)
    if odd:  # YAML reads ``1: 2`` or ``true: x`` as a number or a boolean key
        key, under = odd
        raise RaygenError(f"sweep file {path}: key {key!r}{f' under {under}' if under else ''} is not a name; "
                          f"keys are names like epochs or lr")
    return raw


def _non_name_key(value: Any, under: str = "") -> tuple[Any, str] | None:
    """The first mapping key in ``value`` that is not a string, and where it is."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return k, under
            found = _non_name_key(v, f"{under}.{k}" if under else k)
            if found:
                return found
    elif isinstance(value, list):
        for v in value:
            found = _non_name_key(v, under)
            if found:
                return found
    return None


def load_sweep(name: str, sweeps_dir: Path = SWEEPS_DIR) -> Sweep:
    """``name`` is a sweep in ``sweeps/`` or a path to a YAML file."""
    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.exists()):
        path = sweeps_dir / f"{name}.yaml"
    if not path.exists() and (Path(name).suffix in (".yaml", ".yml") or "/" in name):
        raise RaygenError(f"sweep file {name} does not exist.{did_you_mean(Path(name).stem, available(sweeps_dir))} "
                          f"Give a sweep name (see --list) or an existing .yaml file")
    if not path.exists():
        names = list(available(sweeps_dir))
        raise RaygenError(f"unknown sweep {name!r}.{did_you_mean(name, names)} "
                          f"Available sweeps: {', '.join(names) or '(none)'} (see --list).")
    raw = _read(path)
    where = f"sweep file {path}"
    for key, typ in (("config", dict), ("variants", list), ("smoke", dict), ("resources", dict)):
        if key in raw and not isinstance(raw[key], typ):
            raise RaygenError(f"{where}: {key} must be a {typ.__name__}, got {type(raw[key]).__name__}")
    if any(not isinstance(v, dict) for v in raw.get("variants", [])):
        raise RaygenError(f"{where}: each variant must be a mapping like {{model: vae_conv}}")
    resources = {"cpus_per_trial": 1, "gpus_per_trial": 0, **(raw.pop("resources", None) or {})}
    bad = sorted(set(resources) - {"cpus_per_trial", "gpus_per_trial"})
    if bad:
        raise RaygenError(f"{where}: unknown resources key(s) {', '.join(bad)}; valid: cpus_per_trial, gpus_per_trial")
    for key, v in resources.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 \
                or (key == "cpus_per_trial" and v == 0):
            bound = "> 0" if key == "cpus_per_trial" else ">= 0"
            raise RaygenError(f"{where}: resources {key}={v!r} must be a finite number {bound}")
    if "budget" in raw:
        if not isinstance(raw["budget"], dict):
            raise RaygenError(f"{where}: budget must be a mapping like {{trials: 8, search: random}}, "
                              f"got {raw['budget']!r}")
        raw["budget"] = from_dict(Budget, raw["budget"], f"{where}: budget")
    internal = sorted(set(raw) & set(INTERNAL))  # the file's name and path are raygen's to set
    if internal:
        valid = sorted(f.name for f in dataclasses.fields(Sweep) if f.name not in INTERNAL)
        raise RaygenError(f"{where}: unknown key(s) {', '.join(internal)} (the sweep's name is its file's). "
                          f"Valid keys: {', '.join(valid)}.")
    if isinstance(raw.get("stack"), str) and raw["stack"].strip().lower() in ("auto", "none"):
        word = raw["stack"].strip().lower()  # as --stack reads them
        raw["stack"] = None if word == "none" else word
    sweep = from_dict(Sweep, {"name": path.stem, "path": str(path), **raw}, where)
    sweep.resources = resources
    return sweep
