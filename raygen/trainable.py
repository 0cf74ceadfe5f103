"""The one Ray Tune trainable that serves every model: a thin class-API wrapper around
``trial.Trial``, with actor reuse through ``reset_config``.

Bookkeeping by the clock: a Ray Tune step (one report) runs as many epochs as fit in
``report_seconds`` and a checkpoint is asked for at most every ``checkpoint_seconds``, always
at the end (``runstate.KeepState`` also asks for one on Ctrl-C), so a short epoch does not pay
a report and a checkpoint of its own. Schedulers see ``epoch`` as their time attribute.

A trial whose config or data is bad (a RaygenError) is not retried: it reports
``status: failed`` with the message and stops, and the sweep goes on.
"""
from __future__ import annotations

import itertools
import json
import os
import sys
import time
from typing import Any

import torch
from ray import tune

from .diskcache import load_tensors
from .errors import RaygenError
from .trial import Trial, pick_device


def one_step(trial: Trial) -> dict[str, Any]:
    """Train the epochs of one Ray Tune step; the last one's result. ``report_every`` epochs when
    set, else as many as fit in ``report_seconds`` (judged by the last epoch's length, at least
    one); a step also ends with the trial, and after an epoch that evaluated (so that the
    step's result, which schedulers and the console see, carries the metrics)."""
    c, t0 = trial.cfg, time.perf_counter()
    for n in itertools.count(1):
        t_epoch = time.perf_counter()
        result = trial.train_epoch()
        now = time.perf_counter()
        if result.get("done") or "eval_time_s" in result:
            return result
        if c.report_every and n >= c.report_every:
            return result
        if not c.report_every and (now - t0) + (now - t_epoch) > c.report_seconds:
            return result
    raise AssertionError("unreachable")


FINAL = "model.pt"
_STARTED = 0  # trials started in this worker process


class GenerativeTrainable(tune.Trainable):
    def setup(self, config: dict[str, Any], data_root: str | None = None, sweep_dir: str | None = None) -> None:
        self._data_root, self._sweep_dir = data_root, sweep_dir
        self._start(config)

    def _start(self, config: dict[str, Any]) -> None:
        global _STARTED
        t0 = time.perf_counter()
        self.trial, self.error, self.finished = None, None, False
        self._saved_at = time.monotonic()  # a trial's first checkpoint comes checkpoint_seconds in
        gpus = float((self.trial_resources.required_resources if self.trial_resources else {}).get("GPU", 0))
        cpus = float((self.trial_resources.required_resources if self.trial_resources else {}).get("CPU", 1))
        torch.set_num_threads(max(1, int(cpus)))
        try:
            self.trial = Trial(config, pick_device(gpus), self._data_root, out_dir=self.logdir,
                               sweep_dir=self._sweep_dir)
        except RaygenError as exc:
            self.error = str(exc)
        # the trial's start-up in this process (the data, the model), and whether it came
        # first here (imports, data read from disk) or on a reused actor (everything kept)
        self.startup = {"startup_s": time.perf_counter() - t0, "first_on_worker": _STARTED == 0}
        _STARTED += 1

    def step(self) -> dict[str, Any]:
        if self.error:
            return {"status": "failed", "error": self.error, "done": True}
        import ray

        first = len(self.trial.history)
        result = one_step(self.trial)
        out = {**result, **self.startup, "node_id": ray.get_runtime_context().get_node_id(),
               # this step's epochs: a trial stopped or interrupted before its end keeps every epoch
               "epochs_json": json.dumps(self.trial.history[first:])}
        if result.get("done"):
            out["history_json"] = json.dumps(self.trial.history)  # every epoch, across restarts
            self.finished = True
        now = time.monotonic()
        if result.get("done") or now - self._saved_at >= self.trial.cfg.checkpoint_seconds:
            out["should_checkpoint"] = True  # Ray Tune then calls save_checkpoint
            self._saved_at = now
        return out

    def save_checkpoint(self, checkpoint_dir: str) -> dict | None:
        """``state.pt`` (what resuming needs), or for a trial that is over ``model.pt``: the
        trained model alone, which ``raygen.load`` reads back."""
        if self.trial is None:
            return None
        if self.finished:
            self.trial.save(os.path.join(checkpoint_dir, FINAL), final=True)
        else:
            torch.save(self.trial.state(), os.path.join(checkpoint_dir, "state.pt"))
        return None

    def load_checkpoint(self, checkpoint: str | dict | None) -> None:
        """Resume from ``state.pt`` (read as data only: ``weights_only``); a checkpoint that is
        unreadable or incomplete restarts the trial from epoch 0, and says so."""
        path = os.path.join(checkpoint, "state.pt") if isinstance(checkpoint, str) else None
        if self.trial is None or not path or not os.path.exists(path):
            return
        try:
            self.trial.load_state(load_tensors(path, Trial.STATE_KEYS, "checkpoint"))
        except (ValueError, KeyError, RuntimeError) as exc:
            print(f"raygen: {exc}; the trial restarts from epoch 0", file=sys.stderr, flush=True)
            self._start(self.config)

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        self._start(new_config)  # reuse the actor (and its loaded dataset) for the next trial
        return True
