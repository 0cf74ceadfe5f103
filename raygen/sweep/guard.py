"""One driver per run, and a resume that runs the run it started.

A run's driver holds an exclusive lock on ``<run>/.raygen-state/lock`` (``flock``: the kernel
lets it go when the process ends, however it ends), so a second ``--resume`` of a run that is
still going is refused instead of training the same trials into the same folders.

A new run writes its plan (what decides its trials: every grid configuration, the search,
its space and budget, the scheduler) to ``<run>/.raygen-state/plan.json``. Ray resumes what it
stored, not the sweep file: ``--resume`` after the file was edited would silently ignore the
edit, so it is refused, saying what changed. Local run folders only (an object store has no
lock; its runs are resumed as Ray stored them).
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path
from typing import Any

from raygen.core.errors import RaygenError
from raygen.core.storage import atomic_write, is_remote
from raygen.core.values import plain
from raygen.sweep.plan import Plan

BACKUP_DIR = ".raygen-state"  # raygen's own files in a run folder: its lock, plan and signed copies of Ray's state

PLAN_FILE = "plan.json"
_HELD: list[int] = []  # the lock's file descriptor, kept open for the life of the driver


def lock_run(run_dir: str) -> None:
    """Take the run's lock, or say who holds it (one line)."""
    if is_remote(run_dir):
        return
    keep = Path(run_dir) / BACKUP_DIR
    keep.mkdir(parents=True, exist_ok=True)
    fd = os.open(keep / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise RaygenError(f"--resume: run {run_dir} is running now ({holder}); wait for it to end, "
                          f"or stop it (Ctrl-C), then resume") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"raygen pid {os.getpid()} on {socket.gethostname()}".encode())
    _HELD.append(fd)


def plan_record(plan: Plan, grouped: bool = False) -> dict[str, Any]:
    """What decides a run's trials, as plain JSON: each trial, however ``stack: auto``'s probe
    groups them (``grouped``: as Ray trials, the record of runs begun before the probe)."""
    s = plan.sweep
    trials = (plan.tune_configs() if grouped else [c for g in plan.stacks for c in g]) if plan.is_grid else [s.config]
    return plain({"search": s.search, "metric": s.metric, "mode": s.mode, "num_samples": s.num_samples,
                  "scheduler": s.scheduler, "max_failures": s.max_failures, "stack": s.stack,
                  "budget": vars(s.budget) if s.budget else None, "trials": trials})


def _digest(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, default=str)


def save_plan(run_dir: str, plan: Plan) -> None:
    if not is_remote(run_dir):
        path = Path(run_dir) / BACKUP_DIR / PLAN_FILE
        atomic_write(path, lambda tmp: tmp.write_text(_digest(plan_record(plan))))


def check_plan(run_dir: str, plan: Plan) -> None:
    """Refuse to resume a run whose sweep now plans other trials than it started with."""
    path = Path(run_dir) / BACKUP_DIR / PLAN_FILE
    if is_remote(run_dir) or not path.is_file():
        return  # a run of an older raygen: resumed as Ray stored it
    try:
        was = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    now = json.loads(_digest(plan_record(plan)))
    if was == now or was == json.loads(_digest(plan_record(plan, grouped=True))):
        return
    raise RaygenError(f"--resume: run {Path(run_dir).name} planned other trials than this command does "
                      f"({changes(was, now)}){started_with(run_dir, plan)}, and a resumed run goes on with the trials "
                      f"it started with: resume it with its own sweep file and options, or start a new run "
                      f"(without --resume)")


def started_with(run_dir: str, plan: Plan) -> str:
    """The likeliest cause, said: a smoke run resumed without --smoke (or the reverse), and the
    command the run was started with (its provenance)."""
    from raygen.record.rows import META_FILE

    said = []
    smoke_run = Path(run_dir).name.endswith("-smoke")
    if smoke_run != plan.smoke:
        how = "with" if smoke_run else "without"
        said.append(f"; it is {'a' if smoke_run else 'not a'} smoke run: resume it {how} --smoke")
    try:
        command = json.loads((Path(run_dir) / META_FILE).read_text())["provenance"]["command"]
        said.append(f"; it was started as: {command}")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return "".join(said)


def changes(was: dict[str, Any], now: dict[str, Any]) -> str:
    """The differences in a few words: settings changed, trials added or dropped."""
    said = [f"{k}: {was.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(was) | set(now))
            if k != "trials" and was.get(k) != now.get(k)]
    old = [_digest(t) for t in was.get("trials", [])]
    new = [_digest(t) for t in now.get("trials", [])]
    if old != new:
        added, dropped = [t for t in new if t not in old], [t for t in old if t not in new]
        said.append(f"{len(old)} trials planned then, {len(new)} now"
                    + (f"; {len(added)} new, e.g. {_short(added[0])}" if added else "")
                    + (f"; {len(dropped)} gone, e.g. {_short(dropped[0])}" if dropped else ""))
    return "; ".join(said)


def _short(trial: str, width: int = 160) -> str:
    return trial if len(trial) <= width else trial[: width - 1] + "…"
