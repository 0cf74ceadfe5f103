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
from collections.abc import Callable
from typing import Any

import torch
from pyarrow import fs as pafs
from ray import tune

from raygen.core.diskcache import load_tensors
from raygen.core.errors import RaygenError
from raygen.engine.config import TrainConfig
from raygen.engine.stacking import StackedTrial
from raygen.engine.trial import Trial, pick_device
from raygen.record import keys
from raygen.record.transport import EPOCHS_NAME, stack_epochs, stack_of, step_line, trial_epochs
from raygen.sweep.liveness import Heart
from raygen.sweep.neighbours import Neighbours


def one_step(train_epoch: Callable[[], bool], c: TrainConfig) -> None:
    """Train the epochs of one Ray Tune step: ``report_every`` epochs when set, else as many as
    fit in ``report_seconds`` (judged by the last epoch's length, at least one). ``train_epoch``
    trains one and says whether the step must end there: the trial ended, or it evaluated (the
    step's result, which schedulers and the console see, then carries the metrics)."""
    t0 = time.perf_counter()
    for n in itertools.count(1):
        t_epoch = time.perf_counter()
        if train_epoch():
            return
        now = time.perf_counter()
        if c.report_every and n >= c.report_every:
            return
        if not c.report_every and (now - t0) + (now - t_epoch) > c.report_seconds:
            return


def _ends_step(result: dict[str, Any] | None) -> bool:
    return bool(result) and (bool(result.get(keys.DONE)) or keys.EVAL_TIME_S in result)


FINAL = "model.pt"
PROGRESS = "progress.json"  # Ray's counters at a checkpoint, for restoring from one Ray did not record


def newest_checkpoint(fs: pafs.FileSystem, trial_dir: str) -> tune.Checkpoint | None:
    """The newest complete ``checkpoint_*`` (one with ``state.pt``) in a trial's folder."""
    infos = fs.get_file_info(pafs.FileSelector(trial_dir, allow_not_found=True))
    names = sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory
                   and i.base_name.startswith("checkpoint_"))
    for name in reversed(names):
        path = f"{trial_dir}/{name}"
        if fs.get_file_info(f"{path}/state.pt").type == pafs.FileType.File:
            return tune.Checkpoint(path, filesystem=fs)
    return None


def _progress(checkpoint: tune.Checkpoint) -> dict[str, Any]:
    try:
        with checkpoint.filesystem.open_input_stream(f"{checkpoint.path}/{PROGRESS}") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return {}

_STARTED = 0  # trials started in this worker process


def since_process_start() -> float | None:
    """Seconds since this process started (None where it cannot be read): before a worker's
    first ``setup`` its process started and imported torch, Ray Tune and raygen, seconds that
    the trial's own clock does not see. psutil comes with Ray (on its path once Ray is imported)."""
    try:
        import psutil

        return max(time.time() - psutil.Process().create_time(), 0.0)
    except Exception:  # no psutil, or a platform it cannot read
        return None


class GenerativeTrainable(tune.Trainable):
    def setup(self, config: dict[str, Any], data_root: str | None = None, sweep_dir: str | None = None) -> None:
        self._data_root, self._sweep_dir = data_root, sweep_dir
        self.heart = Heart()  # the driver's watchdog hears this process live (liveness.py)
        self._start(config)
        self._restore_unrecorded()

    def _start(self, config: dict[str, Any]) -> None:
        global _STARTED
        t0 = time.perf_counter()
        if not hasattr(self, "neighbours"):
            self.neighbours = Neighbours()
        self.neighbours.restart()
        if hasattr(self, "heart"):
            self.heart.key = self.trial_id
        self.trial, self.error, self.finished = None, None, False
        members = stack_of(config)
        self._saved_at = time.monotonic()  # a trial's first checkpoint comes checkpoint_seconds in
        gpus = float((self.trial_resources.required_resources if self.trial_resources else {}).get("GPU", 0))
        cpus = float((self.trial_resources.required_resources if self.trial_resources else {}).get("CPU", 1))
        torch.set_num_threads(max(1, int(cpus)))
        try:
            if members:  # K trials as one vectorised model, each writing into member_<i>/
                dirs = [os.path.join(self.logdir, f"member_{i}") for i in range(len(members))]
                self.trial = StackedTrial(members, pick_device(gpus), self._data_root, dirs, self._sweep_dir)
                self.cfg = self.trial.members[0].cfg
            else:
                self.trial = Trial(config, pick_device(gpus), self._data_root, out_dir=self.logdir,
                                   sweep_dir=self._sweep_dir)
                self.cfg = self.trial.cfg
        except RaygenError as exc:
            self.error = str(exc)
        except Exception as exc:  # e.g. an allocation refused: this trial fails, under its own name
            self.error = f"{type(exc).__name__}: {exc}"
        # the trial's start-up (the data, the model) and whether it came first in this process: then
        # from the process's start (its imports, data read from disk), else on a reused actor
        # (everything kept). A Tune trial actor asks for its own runtime_env, so never takes a
        # worker Ray started ahead of need: its process started for it.
        first = _STARTED == 0
        spent = time.perf_counter() - t0
        self.startup = {keys.STARTUP_S: (since_process_start() or spent) if first else spent,
                        keys.FIRST_ON_WORKER: first}
        _STARTED += 1

    def step(self) -> dict[str, Any]:
        if self.error:
            return {keys.STATUS: keys.FAILED, keys.ERROR: self.error, keys.DONE: True}
        import ray

        out = self._stack_step() if isinstance(self.trial, StackedTrial) else self._trial_step()
        out.update(self.startup, **self.neighbours.look())
        out[keys.NODE_ID] = ray.get_runtime_context().get_node_id()
        self.finished = bool(out.get(keys.DONE))
        now = time.monotonic()
        if self.finished or now - self._saved_at >= self.cfg.checkpoint_seconds:
            out[keys.SHOULD_CHECKPOINT] = True  # Ray Tune then calls save_checkpoint
            self._saved_at = now
        return out

    def _trial_step(self) -> dict[str, Any]:
        first, last = len(self.trial.history), {}

        def epoch() -> bool:
            last.update(self.trial.train_epoch())
            return _ends_step(last)

        one_step(epoch, self.cfg)
        # this step's epochs appended to the trial's file (a trial stopped or interrupted before
        # its end keeps every epoch), every epoch (across restarts) when it ended
        done = bool(last.get(keys.DONE))
        self._write_epochs(self.trial.history[first:], self.trial.history if done else None)
        return {**last, **trial_epochs()}

    def _stack_step(self) -> dict[str, Any]:
        """One step of K stacked trials: the first member's numbers stand for the stack (the
        console's line, Ray's own record); each member's last result and epochs travel beside
        them, and become the member's own row and history (``rows.trial_rows``)."""
        st = self.trial
        firsts = [len(m.history) for m in st.members]
        last: list[dict[str, Any] | None] = [None] * len(st.members)

        def epoch() -> bool:
            results = st.train_epoch()
            last[:] = [r if r is not None else old for r, old in zip(results, last)]
            return st.done or any(_ends_step(r) for r in results if r is not None and not r.get("done"))

        one_step(epoch, self.cfg)
        numbers = next(r for r in last if r)  # a step trains at least one epoch of a running member
        out = {k: v for k, v in numbers.items() if k not in (keys.DONE, keys.STATUS, keys.ERROR)}
        self._write_epochs([m.history[f:] for m, f in zip(st.members, firsts)],
                           [m.history for m in st.members] if st.done else None)
        out.update(stack_epochs(last))
        out[keys.DONE] = st.done
        if st.done:
            out[keys.STATUS] = keys.COMPLETED
        return out

    def _write_epochs(self, step: list, whole: list | None) -> None:
        """This step's epochs appended to the trial's epochs file in its folder (synced with its
        other files), or once it ended the file rewritten as one line of every epoch (complete
        across restarts: a step's line can be lost with a killed driver). Its results name the
        file instead of carrying the epochs (``record.transport``). Rewritten, not removed: Ray's
        sync uploads a trial's files and never deletes one from the run folder."""
        path = os.path.join(self.logdir, EPOCHS_NAME)
        if whole is None:
            with open(path, "ab") as f:
                f.write(step_line(step))
            return
        with open(path + ".tmp", "wb") as f:
            f.write(step_line(whole))
        os.replace(path + ".tmp", path)

    def save_checkpoint(self, checkpoint_dir: str) -> dict | None:
        """``state.pt`` (what resuming needs), or for a trial that is over ``model.pt``: the
        trained model alone, which ``raygen.load`` reads back."""
        if self.trial is None:
            return None
        if self.finished:  # a stack's members each as if alone: member_<i>.pt
            for i, t in enumerate(getattr(self.trial, "members", [self.trial])):
                # the epochs are in the trial's epochs file (``_write_epochs``), not here again
                t.save(os.path.join(checkpoint_dir, FINAL if t is self.trial else f"member_{i}.pt"), final=True,
                       history=False)
        else:
            torch.save(self.trial.state(), os.path.join(checkpoint_dir, "state.pt"))
            with open(os.path.join(checkpoint_dir, PROGRESS), "w") as f:
                json.dump({"training_iteration": self.iteration}, f)
        return None

    def restore(self, checkpoint_path):
        """Ray's restore, from the newest checkpoint the trial has on storage. Ray keeps one
        checkpoint, deleting the one before as soon as it saves the next, but records which is the
        newest only when it next saves its experiment state (every few seconds): a driver killed in
        between resumes with a record that names a deleted checkpoint, or none. The trial goes on
        from the newest one in its folder; with none left, from epoch 0, and says so (never failed)."""
        ckpt = getattr(checkpoint_path, "checkpoint", None)
        if ckpt is None:
            return super().restore(checkpoint_path)
        newest = newest_checkpoint(ckpt.filesystem, os.path.dirname(ckpt.path.rstrip("/")))
        if newest is None:
            if ckpt.filesystem.get_file_info(ckpt.path).type == pafs.FileType.NotFound:
                return self._restart(f"its checkpoint {ckpt.path} is gone and no other is left")
            return super().restore(checkpoint_path)
        metrics = {**checkpoint_path.metrics, **_progress(newest)}
        return super().restore(type(checkpoint_path)(checkpoint=newest, metrics=metrics))

    def _restore_unrecorded(self) -> None:
        """A trial that starts with checkpoints in its folder is one resumed after Ray's record of
        them was lost (``restore``): it goes on from the newest (Ray restores a recorded one after)."""
        storage = getattr(self, "_storage", None)  # Ray's StorageContext of this trial
        if self.trial is None or storage is None:
            return
        newest = newest_checkpoint(storage.storage_filesystem, storage.trial_fs_path)
        if newest is not None:
            from ray.train._internal.checkpoint_manager import _TrainingResult

            super().restore(_TrainingResult(checkpoint=newest, metrics=_progress(newest)))

    def load_checkpoint(self, checkpoint: str | dict | None) -> None:
        """Resume from ``state.pt`` (read as data only: ``weights_only``); a checkpoint that is
        unreadable or incomplete restarts the trial from epoch 0, and says so."""
        path = os.path.join(checkpoint, "state.pt") if isinstance(checkpoint, str) else None
        if self.trial is None or not path or not os.path.exists(path):
            return
        keys = ("members",) if isinstance(self.trial, StackedTrial) else Trial.STATE_KEYS
        try:
            self.trial.load_state(load_tensors(path, keys, "checkpoint"))
        except (ValueError, KeyError, RuntimeError) as exc:
            self._start(self.config)
            self._restart(str(exc))

    def _restart(self, why: str) -> None:
        """A resumed trial that begins again from epoch 0: said on the worker's stderr and in the
        trial's row (``restarted``), which the console and the report show."""
        print(f"raygen: {why}; the trial restarts from epoch 0", file=sys.stderr, flush=True)
        self.startup[keys.RESTARTED] = why

    def cleanup(self) -> None:
        self.neighbours.close()
        if hasattr(self, "heart"):
            self.heart.stop()

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        # Ray's reset keeps the previous trial's last result, which a checkpoint saved before the
        # new trial's first step (Ctrl-C) would carry as the new trial's: its id, config and status
        self._last_result = None
        self._start(new_config)  # reuse the actor (and its loaded dataset) for the next trial
        self._restore_unrecorded()
        return True
