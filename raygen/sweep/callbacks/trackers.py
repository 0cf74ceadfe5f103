"""Experiment trackers: a sweep file's ``track:`` block (or ``--track NAME``) mapped onto Ray
Tune callbacks: raygen's own for MLflow (one run per trial, stack members included:
``mlflow_runs``), Ray Tune's for Weights & Biases. Both are optional extras
(``uv sync --extra mlflow``, ``--extra wandb``); a tracker named without its package is one
clear line before Ray starts. TensorBoard needs nothing: Ray Tune writes its event files
into every trial folder (README, "Trackers").

    track:
      mlflow: {tracking_uri: "file:./mlruns", experiment: my-sweep}
      wandb: {project: raygen, mode: offline}
"""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raygen.core.errors import RaygenError
from raygen.record.keys import FIXED, Kind, of_kind
from raygen.record.transport import STACK

# raygen's transport (epochs as JSON text; a stack's member configs) is nothing to plot: kept
# out of the trackers that log every key (MLflow logs numbers only, and skips it by itself).
NOT_TRACKED = (*sorted(of_kind(FIXED, Kind.TRANSPORT)), STACK)


@dataclass(frozen=True)
class Tracker:
    package: str  # the module its Ray callback imports
    extra: str  # the optional extra that installs it
    keys: tuple[str, ...]  # what the sweep file may set
    build: Callable[[dict[str, Any], str, list[str]], Any]  # (settings, sweep name, names) -> Ray Tune callback


def mlflow_uri(settings: dict[str, Any]) -> str:
    return str(settings.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
               or Path("mlruns").resolve().as_uri())


def _mlflow(settings: dict[str, Any], sweep: str, names: list[str]):
    from raygen.sweep.callbacks.mlflow_runs import MLflowRuns

    return MLflowRuns(mlflow_uri(settings), str(settings.get("experiment") or sweep),
                      {str(k): str(v) for k, v in (settings.get("tags") or {}).items()}, names,
                      save_artifact=bool(settings.get("save_artifact", False)))


def _wandb(settings: dict[str, Any], sweep: str, names: list[str]):
    from ray.air.integrations.wandb import WandbLoggerCallback

    kwargs = {k: settings[k] for k in ("entity", "group", "mode", "tags") if settings.get(k) is not None}
    return WandbLoggerCallback(project=str(settings.get("project") or sweep), excludes=list(NOT_TRACKED), **kwargs)


TRACKERS = {
    "mlflow": Tracker("mlflow", "mlflow", ("tracking_uri", "experiment", "tags", "save_artifact"), _mlflow),
    "wandb": Tracker("wandb", "wandb", ("project", "entity", "group", "mode", "tags"), _wandb),
}


def merged(track: dict[str, Any] | None, names: list[str]) -> dict[str, dict[str, Any]]:
    """The sweep file's ``track:`` with the trackers ``--track`` names added (their defaults)."""
    if track is not None and not isinstance(track, dict):
        raise RaygenError(f"track: takes a mapping, e.g. {{mlflow: {{experiment: my-sweep}}}}; got {track!r}")
    out = {str(k): dict(v or {}) if isinstance(v, dict) or v is None else v for k, v in (track or {}).items()}
    for name in names:
        out.setdefault(name, {})
    return out


def check(track: dict[str, Any], where: str) -> None:
    """Known trackers, known keys, and the package each needs: one line each."""
    for name, settings in track.items():
        if name not in TRACKERS:
            raise RaygenError(f"{where}: track: {name!r} is not a tracker raygen knows; use one of "
                              f"{', '.join(TRACKERS)} (TensorBoard needs no setting: see the README)")
        t = TRACKERS[name]
        if not isinstance(settings, dict):
            raise RaygenError(f"{where}: track: {name} takes a mapping of settings ({', '.join(t.keys)}), "
                              f"got {settings!r}")
        bad = sorted(set(settings) - set(t.keys))
        if bad:
            raise RaygenError(f"{where}: track: {name}: unknown key(s) {', '.join(bad)}; valid: {', '.join(t.keys)}")
        for key in ("tracking_uri", "experiment", "project", "entity", "group", "mode"):
            if key in settings and not isinstance(settings[key], str):
                raise RaygenError(f"{where}: track: {name}: {key} takes text, got {settings[key]!r}")
        if "tags" in settings and not isinstance(settings["tags"], dict):
            raise RaygenError(f"{where}: track: {name}: tags takes a mapping, e.g. {{team: vision}}; "
                              f"got {settings['tags']!r}")
        if importlib.util.find_spec(t.package) is None:
            raise RaygenError(f"{where}: track: {name} needs the {t.package} package, an optional extra: "
                              f"`uv sync --extra {t.extra}` (or leave {name} out)")
        if name == "mlflow":
            from raygen.sweep.callbacks.mlflow_runs import check_reachable

            check_reachable(mlflow_uri(settings), where)


def callbacks(track: dict[str, Any], sweep: str, names: list[str]) -> list:
    """One Ray Tune callback per tracker; ``names``: the keys that name a trial (the console's)."""
    return [TRACKERS[name].build(settings, sweep, names) for name, settings in track.items()]
