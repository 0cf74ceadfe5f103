"""A run that survives a full disk: stop before it fills, keep a good copy of Ray's state.

The driver watches the free space where the run is stored; when it falls below what the
next checkpoints need, it stops the sweep as Ctrl-C does (trials checkpointed and
``interrupted``, Ray's state written whole), so ``--resume`` finishes the run once there
is space.

Ray Tune rewrites its experiment state (``experiment_state-*.json``, the grid generator's
``basic-variant-state-*.json``) in the run folder as the sweep goes. A write that fails
half-way (a full disk) leaves a truncated file that ``Tuner.restore`` cannot read, and the
whole run would be lost to ``--resume``. The driver therefore copies the state, each time
it is whole and has changed, into ``<run>/.raygen-state/`` (an atomic write: when the disk
is full the copy fails and the previous good one stays); ``--resume`` puts a good copy
back over a damaged file before Ray reads it. Local run folders only: an object store's
PUT is atomic by itself.

Ray unpickles these files when it resumes (``tuner.pkl``, the search's state, the experiment
state's pickled parts), and run folders travel: each copy is signed (``core.signing``,
``signatures.json``), and ``--resume`` hands Ray only files this user's raygen signed, or puts
its signed copy back; a folder it cannot vouch for is refused unless ``--trust-run``.
"""
from __future__ import annotations

import json
import os
import pickletools
import shutil
import signal
import time
from pathlib import Path

from ray.tune import Callback

from raygen.core.errors import RaygenError
from raygen.core.signing import is_signed, signature
from raygen.core.storage import atomic_write, is_remote
from raygen.sweep.callbacks.console import say
from raygen.sweep.guard import BACKUP_DIR

SIGNATURES = "signatures.json"
PATTERNS = ("experiment_state-*.json", "basic-variant-state-*.json", "searcher-state-*.pkl", "tuner.pkl")
SLACK = 8 * 2**20  # Ray's own state and the results files, beyond the checkpoints
STOPPED: dict[str, str] = {}  # run folder -> why the guard stopped it (the driver reads it after fit)
# run folder -> trial id -> [checkpoints, bytes] written to the run's storage this session
WRITTEN: dict[str, dict[str, list[int]]] = {}


def _whole(data: bytes) -> bool:
    """Whether a state file was written to its end. The experiment state is JSON; the grid
    generator's state is a pickle despite its name, walked opcode by opcode to its STOP
    (``pickletools`` reads it without loading it, so nothing in it runs)."""
    if not data:
        return False
    try:
        if data[:1] == b"\x80":  # a pickle's PROTO opcode
            ops = list(pickletools.genops(data))
            return ops[-1][0].name == "STOP"
        json.loads(data)
    except (ValueError, IndexError):  # truncated, or neither
        return False
    return True


def _state_files(folder: Path) -> list[Path]:
    return sorted(p for pattern in PATTERNS for p in folder.glob(pattern))


def backup(run_dir: str | Path) -> int:
    """Copy Ray's state files that are whole and changed into the backup folder; the number
    copied. Any write error keeps the previous copy (and is not this sweep's error)."""
    run = Path(run_dir)
    files = _state_files(run)
    try:
        contents = {p.name: p.read_bytes() for p in files}
    except OSError:
        return 0
    if not contents or not all(_whole(b) for b in contents.values()):
        return 0  # copy only a consistent set: every file whole
    keep, copied = run / BACKUP_DIR, 0
    sigs = _signatures(keep)
    try:
        for name, data in contents.items():
            old = keep / name
            if old.is_file() and old.read_bytes() == data and is_signed(data, sigs.get(name)):
                continue
            keep.mkdir(exist_ok=True)
            sigs[name] = signature(data)  # the signature first: a copy is never newer than it
            atomic_write(keep / SIGNATURES, lambda tmp: tmp.write_text(json.dumps(sigs)))
            atomic_write(old, lambda tmp, data=data: tmp.write_bytes(data))
            copied += 1
    except OSError:
        pass
    return copied


def _signatures(keep: Path) -> dict[str, str]:
    try:
        sigs = json.loads((keep / SIGNATURES).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(sigs, dict):
        return {}
    return {k: v for k, v in sigs.items() if isinstance(k, str) and isinstance(v, str)}


def repair(run_dir: str | Path, trust: bool = False) -> list[tuple[str, str]]:
    """Before ``--resume``: each state file Ray will read must be whole and signed by this
    user's raygen; else its signed copy is put back. ``(name, why)`` of those put back. A
    damaged file without a good copy, or one raygen cannot vouch for, is a clear error;
    ``trust``: the user vouches for the folder (a colleague's run), and it is signed as it is."""
    run = Path(run_dir)
    keep = run / BACKUP_DIR
    sigs = _signatures(keep)
    names = {p.name for p in _state_files(run)} | {p.name for p in _state_files(keep)}
    restored = []
    for name in sorted(names):
        path, good = run / name, keep / name
        data = path.read_bytes() if path.is_file() else b""
        whole = _whole(data)
        if whole and (trust or is_signed(data, sigs.get(name))):
            continue
        copy = good.read_bytes() if good.is_file() else b""
        if not (_whole(copy) and (trust or is_signed(copy, sigs.get(name)))):
            if not whole:
                raise RaygenError(f"--resume: Ray's experiment state {path} is damaged (a full disk?) and no good "
                                  f"copy was kept; the trials' files are under {run}, but start this sweep afresh")
            raise RaygenError(f"--resume: {path} was not written by raygen for this user (no valid signature), and "
                              f"Ray would unpickle it, which runs any code in it; the results can be read with "
                              f"python -m raygen.report {run}; resume it only if you trust its source: add --trust-run")
        atomic_write(path, lambda tmp, copy=copy: tmp.write_bytes(copy))
        restored.append((name, "damaged (a full disk?)" if not whole else "changed after raygen last signed it"))
    if trust:
        backup(run)
    return restored


def _size(folder: Path) -> int:
    try:
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    except OSError:  # a checkpoint rotated away while it was measured
        return 0


def checkpoint_bytes(run_dir: str | Path) -> int:
    """The largest of the newest checkpoints of the run's trials (0 before the first)."""
    sizes = [_size(max(t.glob("checkpoint_*"))) for t in Path(run_dir).iterdir()
             if t.is_dir() and any(t.glob("checkpoint_*"))]
    return max(sizes, default=0)


def short_of_space(run_dir: str | Path, ckpt: int, running: int) -> str | None:
    """Why the run must stop now, or None: the disk holding it has less free space than two
    more checkpoints (``ckpt`` bytes each) of every running trial (Ray writes a new one
    before it drops an old one)."""
    need = SLACK + 2 * ckpt * max(running, 1)
    free = shutil.disk_usage(run_dir).free
    if free >= need:
        return None
    return (f"the disk holding {run_dir} has {free / 2**20:.0f} MB free, less than the next checkpoints "
            f"need (about {need / 2**20:.0f} MB)")


class KeepState(Callback):
    """A Tune callback on the driver. After every step: stop the sweep (SIGINT, as Ctrl-C)
    when the disk is about to fill (one ``statvfs``; checkpoint sizes re-measured at most
    every ``every_s``); every ``every_s`` and at the end: ``backup``.

    Checkpoints come by the clock (``trainable.py``), so on Ctrl-C the trials that are running
    first save one: their next result asks for it, and Ray Tune's own stop follows once each
    has (at most ``stop_wait_s``; a second Ctrl-C, or a full disk, stops at once)."""

    def __init__(self, run_dir: str, every_s: float = 2.0, stop_wait_s: float = 60.0):
        self.run_dir, self.every_s, self.stop_wait_s = run_dir, every_s, stop_wait_s
        self._last, self._ckpt = 0.0, 0
        self._trials: list = []
        self._stopping: float | None = None  # when Ctrl-C came
        self._saved: set[str] = set()  # trials that saved a checkpoint since then
        self._waited: set[str] = set()  # the trials running at Ctrl-C: the stop waits for them alone
        self._tune_handler = None

    def setup(self, **info):
        if not is_remote(self.run_dir) and Path(self.run_dir).is_dir():
            backup(self.run_dir)  # tuner.pkl, signed before anything can interrupt the run
        # Ray Tune put its SIGINT handler in place before building the controller that calls this
        self._tune_handler = signal.getsignal(signal.SIGINT)
        if callable(self._tune_handler):
            signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, sig, frame) -> None:
        running = {t.trial_id for t in self._trials if t.status == "RUNNING"}
        if self._stopping is not None or not running or self.run_dir in STOPPED:
            if self._stopping is None and self.run_dir not in STOPPED:  # the first Ctrl-C, between trials
                say("stopping now: no trial is running (the ones still to run are kept for --resume)")
            self._stop_now(sig, frame)
            return
        self._stopping, self._waited = time.monotonic(), running
        say(f"stopping: {len(running)} running trial(s) save a checkpoint first "
            f"(up to {self.stop_wait_s:.0f} s; Ctrl-C again to stop now)", sticky=True)

    def _stop_now(self, sig=signal.SIGINT, frame=None) -> None:
        handler, self._tune_handler = self._tune_handler, None
        if callable(handler):
            signal.signal(signal.SIGINT, handler)
            handler(sig, frame)  # sets Tune's stop flag and puts back the handler it found

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self._stopping is not None and trial.trial_id not in self._saved:
            result["should_checkpoint"] = True  # read by Ray Tune after the callbacks

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        tally = WRITTEN.setdefault(self.run_dir, {}).setdefault(trial.trial_id, [0, 0])
        tally[0] += 1
        if not is_remote(self.run_dir):  # Ray staged it in its session folder first: twice on a local disk
            tally[1] += _size(Path(checkpoint.path))
        if self._stopping is not None:
            self._saved.add(trial.trial_id)

    def _check(self, trials=(), end: bool = False) -> None:
        if is_remote(self.run_dir) or not Path(self.run_dir).is_dir():
            return
        now = time.monotonic()
        due = end or now - self._last >= self.every_s
        if due:
            self._last, self._ckpt = now, checkpoint_bytes(self.run_dir)
        if not end and self.run_dir not in STOPPED:
            why = short_of_space(self.run_dir, self._ckpt, sum(t.status == "RUNNING" for t in trials))
            if why:
                STOPPED[self.run_dir] = why
                os.kill(os.getpid(), signal.SIGINT)  # Ray Tune's own clean stop, without more checkpoints
        if due:
            backup(self.run_dir)

    def on_step_end(self, iteration, trials, **info):
        self._trials = trials
        self._check(trials)
        if self._stopping is not None and self._tune_handler is not None:
            # the trials running at Ctrl-C have saved; one Ray starts since on a freed slot is not waited for
            # (it stops with the rest, from scratch or its checkpoint), so the stop ends soon
            waiting = ({t.trial_id for t in trials if t.status == "RUNNING"} & self._waited) - self._saved
            if not waiting or time.monotonic() - self._stopping > self.stop_wait_s:
                self._stop_now()

    def on_experiment_end(self, trials, **info):
        self._check(trials, end=True)
