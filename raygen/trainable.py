"""The one Ray Tune trainable that serves every model: a thin class-API wrapper around
``trial.Trial`` (one ``step`` per epoch, a checkpoint per epoch, actor reuse through
``reset_config``).

A trial whose config or data is bad (a RaygenError) is not retried: it reports
``status: failed`` with the message and stops, and the sweep goes on.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any

import torch
from ray import tune

from .diskcache import load_tensors
from .errors import RaygenError
from .trial import Trial, pick_device


class GenerativeTrainable(tune.Trainable):
    def setup(self, config: dict[str, Any], data_root: str | None = None, sweep_dir: str | None = None) -> None:
        self._data_root, self._sweep_dir = data_root, sweep_dir
        self._start(config)

    def _start(self, config: dict[str, Any]) -> None:
        self.trial, self.error = None, None
        gpus = float((self.trial_resources.required_resources if self.trial_resources else {}).get("GPU", 0))
        cpus = float((self.trial_resources.required_resources if self.trial_resources else {}).get("CPU", 1))
        torch.set_num_threads(max(1, int(cpus)))
        try:
            self.trial = Trial(config, pick_device(gpus), self._data_root, out_dir=self.logdir,
                               sweep_dir=self._sweep_dir)
        except RaygenError as exc:
            self.error = str(exc)

    def step(self) -> dict[str, Any]:
        if self.error:
            return {"status": "failed", "error": self.error, "done": True}
        import ray

        for _ in range(max(1, self.trial.cfg.report_every)):  # e.g. 2000 cosine epochs: a report per 50
            result = self.trial.train_epoch()
            if result.get("done"):
                result["history_json"] = json.dumps(self.trial.history)  # every epoch (see Trial.history)
                break
        return {**result, "node_id": ray.get_runtime_context().get_node_id()}

    def save_checkpoint(self, checkpoint_dir: str) -> dict | None:
        if self.trial is not None:
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
