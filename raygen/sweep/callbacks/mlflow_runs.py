"""MLflow, one run per trial: every member of a stacked trial is its own run, named as the
console names it (model and swept values), with its parameters, one point per epoch, and its
final numbers. A tracking server that cannot be reached is found before the start
(``check_reachable``); one that fails mid-run is said once, and the sweep and its results go on.
"""
from __future__ import annotations

import math
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ray.tune.logger import LoggerCallback

from raygen.core.errors import RaygenError
from raygen.record.transport import given_config, local_epochs, members, stack_of
from raygen.sweep.callbacks.console import label

LOCAL_SCHEMES = ("file", "sqlite")  # a folder or a database file on this machine
SCHEMES = ("http", "https", "databricks", "postgresql", "mysql", "mssql", "file", "sqlite")


def check_reachable(uri: str, where: str) -> None:
    """A tracking URI MLflow can use, checked before the sweep starts (each problem one line):
    an http(s) server answers its health check within seconds, a local store's folder can be
    written, and the scheme is one MLflow's tracking stores take."""
    if not isinstance(uri, str) or not uri.strip():
        raise RaygenError(f"{where}: track: mlflow: tracking_uri={uri!r} is not a URI; give e.g. file:./mlruns or "
                          f"http://host:5000")
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else "file"
    if scheme not in SCHEMES:
        raise RaygenError(f"{where}: track: mlflow: tracking_uri {uri}: MLflow has no tracking store for "
                          f"{scheme}://; give file:, sqlite:, http(s): or a database URI")
    if scheme in LOCAL_SCHEMES:
        path = uri.split(":", 1)[1] if ":" in uri else uri
        path = path[2:] if path.startswith("//") else path  # file:///abs, sqlite:////abs, file:./rel
        path = path[1:] if scheme == "sqlite" and path.startswith("//") else path
        folder = Path(path).expanduser() if scheme == "file" else Path(path).expanduser().parent
        try:  # made now, as MLflow would make it at the first trial
            folder.mkdir(parents=True, exist_ok=True)
            writable = os.access(folder, os.W_OK)
        except OSError:
            writable = False
        if not writable:
            raise RaygenError(f"{where}: track: mlflow: tracking_uri {uri}: {folder} cannot be written here; fix "
                              f"tracking_uri, or leave mlflow out")
        return
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as r:
            r.read(64)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        why = getattr(exc, "reason", None) or exc
        raise RaygenError(f"{where}: track: mlflow: the tracking server {uri} cannot be reached ({why}); start it, "
                          f"fix tracking_uri, or leave mlflow out") from None


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


class MLflowRuns(LoggerCallback):
    def __init__(self, tracking_uri: str, experiment: str, tags: dict[str, str], names: list[str],
                 save_artifact: bool = False):
        self.uri, self.experiment, self.tags, self.names = tracking_uri, experiment, tags, names
        self.save_artifact = save_artifact
        self.runs: dict[str, list[str]] = {}  # Ray trial id -> one MLflow run id per member
        self._epochs: dict[str, list[int]] = {}  # Ray trial id -> epochs logged per member
        self.failed: str | None = None
        self._client, self._experiment_id = None, None

    def __getstate__(self):  # pickled with the run's config (tuner.pkl): not the client
        return {**self.__dict__, "_client": None, "_experiment_id": None}

    def _mlflow(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            if self.uri.startswith("file:"):  # MLflow 3 keeps its file store behind this opt-in
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            # a server gone mid-run costs seconds, not MLflow's default minutes of retries in Tune's loop
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
            self._client = MlflowClient(tracking_uri=self.uri)
            exp = self._client.get_experiment_by_name(self.experiment)
            self._experiment_id = exp.experiment_id if exp else self._client.create_experiment(self.experiment)
        return self._client

    def _guard(self, what: str, act) -> None:
        """Tracking is a side channel: its failure is said once and never stops the sweep."""
        if self.failed:
            return
        try:
            act()
        except Exception as exc:  # the server went away, a full disk, a rejected value
            self.failed = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
            print(f"raygen: mlflow stopped tracking ({what}: {self.failed}); the sweep and its results go on",
                  file=sys.stderr, flush=True)

    def _start(self, trial) -> None:
        client = self._mlflow()
        ids = []
        for cfg in [given_config(c) for c in stack_of(trial.config) or [trial.config]]:
            run = client.create_run(self._experiment_id, run_name=label(cfg, self.names) or trial.trial_id,
                                    tags={**self.tags, "ray_trial_id": trial.trial_id})
            client.log_batch(run.info.run_id, params=[_param(k, v) for k, v in cfg.items()])
            ids.append(run.info.run_id)
        self.runs[trial.trial_id] = ids

    def log_trial_start(self, trial) -> None:
        self._guard("starting a run", lambda: self._start(trial))

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        def log():
            if trial.trial_id not in self.runs:  # a trial resumed in a later session
                self._start(trial)
            from mlflow.entities import Metric

            ids, stamp = self.runs[trial.trial_id], int(time.time() * 1000)
            # the epochs the trial wrote to its folder since the last result (where its folder is
            # on this machine; elsewhere the last epoch alone, below)
            written = local_epochs(trial.local_path, bool(stack_of(trial.config)))
            logged = self.__dict__.setdefault("_epochs", {}).setdefault(trial.trial_id, [0] * len(ids))
            per_member = [written[i][logged[i]:] if i < len(written) else [] for i in range(len(ids))]
            for i in range(min(len(ids), len(written))):
                logged[i] = len(written[i])
            lasts = members(result) or [result]
            for run_id, epochs, last in zip(ids, per_member, lasts):
                points = [Metric(k, v, stamp, int(e.get("epoch", 0)))
                          for e in epochs or [] for k, v in _numbers(e).items()]
                step = int((last or {}).get("epoch") or 0)
                seen = {m.key for m in points}
                points += [Metric(k, v, stamp, step) for k, v in _numbers(last or {}).items() if k not in seen]
                for i in range(0, len(points), 900):  # MLflow takes at most 1,000 metrics a batch
                    self._client.log_batch(run_id, metrics=points[i:i + 900])
        self._guard("logging a result", log)

    def log_trial_end(self, trial, failed: bool = False) -> None:
        def end():
            ids = self.runs.get(trial.trial_id, [])
            for i, run_id in enumerate(ids):
                folder = trial.local_path if len(ids) == 1 else os.path.join(trial.local_path, f"member_{i}")
                if self.save_artifact and folder and os.path.isdir(folder):  # its images and files
                    self._client.log_artifacts(run_id, folder)
                self._client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
        self._guard("ending a run", end)


def _param(key: str, value: Any):
    from mlflow.entities import Param

    return Param(key, str(value)[:6000])  # MLflow's limit on a parameter's value
