"""One driver per run (a lock a second process cannot take), and a resume that refuses a sweep
edited since its run started, saying what changed."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from raygen.core.errors import RaygenError
from raygen.sweep import guard
from raygen.sweep.plan import make_plan
from raygen.sweep.spec import Sweep

from conftest import REPO


def _plan(**change):
    config = {"model": "vae_mlp", "dataset": "mnist", "epochs": 2, "seed": {"grid": [0, 1]}, **change}
    return make_plan(Sweep(name="g", config=config))


def test_a_resume_of_an_edited_sweep_is_refused_saying_what_changed(tmp_path):
    run = str(tmp_path / "run")
    guard.save_plan(run, _plan())
    guard.check_plan(run, _plan())  # unchanged: resumes
    with pytest.raises(RaygenError, match=r"run run planned other trials than this command does \(2 trials planned "
                                          r"then, 3 now; 1 new, e.g. .*\"seed\": 2.*its own sweep file and options"):
        guard.check_plan(run, _plan(seed={"grid": [0, 1, 2]}))
    with pytest.raises(RaygenError, match=r"2 trials planned then, 2 now; 2 new, e.g. .*\"epochs\": 5.*2 gone"):
        guard.check_plan(run, _plan(epochs=5))
    edited = make_plan(Sweep(name="g", metric="reg_loss", config={"model": "vae_mlp", "dataset": "mnist", "epochs": 2,
                                                            "seed": {"grid": [0, 1]}}))
    with pytest.raises(RaygenError, match=r"metric: 'loss' -> 'reg_loss'"):
        guard.check_plan(run, edited)
    guard.check_plan(str(tmp_path / "older"), edited)  # a run without a recorded plan: as Ray stored it
    # a smoke run resumed without --smoke: the likely cause said, and the command it was started with
    smoke_run = tmp_path / "20261207-120000-smoke"
    guard.save_plan(str(smoke_run), make_plan(Sweep(name="g", config=_plan().sweep.config), smoke=True))
    (smoke_run / "raygen.json").write_text('{"provenance": {"command": "python -m raygen.sweep g --smoke"}}')
    with pytest.raises(RaygenError, match=r"it is a smoke run: resume it with --smoke; it was started as: "
                                          r"python -m raygen.sweep g --smoke, and"):
        guard.check_plan(str(smoke_run), _plan())


HOLD = """
import sys, time
from raygen.sweep.guard import lock_run
lock_run(sys.argv[1]); print("held", flush=True); time.sleep(120)
"""


@pytest.mark.slow  # a fresh Python process (torch's import) or a model trained end to end
def test_a_run_another_process_is_running_cannot_be_resumed_until_it_ends(tmp_path):
    run = str(tmp_path / "run")
    proc = subprocess.Popen([sys.executable, "-c", HOLD, run], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RaygenError, match=rf"run {run} is running now \(raygen pid {proc.pid} on .*\); wait"):
            guard.lock_run(run)
    finally:
        proc.kill()  # however the holder ends, the kernel lets the lock go
        proc.wait()
    deadline = time.time() + 10
    while True:
        try:
            guard.lock_run(run)
            break
        except RaygenError:
            assert time.time() < deadline
            time.sleep(0.1)
    os.close(guard._HELD.pop())

