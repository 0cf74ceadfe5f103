"""Faults on a real local Ray: a killed worker resumes from its checkpoint; a killed
driver's sweep resumes with exactly one row per trial."""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import pickle
import shutil
import signal
import subprocess
import time

import pandas as pd
import pytest
import torch

from raygen.record.transport import EPOCHS_NAME, local_epochs

from conftest import REPO
from sweep_helpers import only_run, results, run_sweep, sweep_cmd, write_sweep

pytestmark = pytest.mark.slow  # starts Ray (or Chromium)

TRIALS = """
description: fault tolerance
max_failures: 2
max_concurrent: 1
config:
  model: vae_mlp
  dataset: mnist
  split: test
  epochs: 3
  max_batches: 5
  eval_samples: 100
  seed: {grid: [0, 1, 2, 3]}
  report_every: 1         # a Ray step and a checkpoint per epoch: faults land between checkpoints
  checkpoint_seconds: 0
"""


def test_killed_worker_is_retried_from_its_last_checkpoint(tmp_path, data_root, faults):
    # faulty_vae_mlp: tests/plugins/faults.py
    sweep = write_sweep(tmp_path, "killed", TRIALS.replace("{grid: [0, 1, 2, 3]}", "0")
                        .replace("model: vae_mlp", "model: faulty_vae_mlp") + "  kill_at_epoch: 2\n")
    run_sweep(sweep, tmp_path / "runs", data_root, "--num-cpus", "1")
    run_dir = only_run(tmp_path / "runs", "killed")
    (row,) = results(run_dir).itertuples()
    assert row.status == "completed" and row.epoch == 3
    assert row.resumed_from_epoch == 1  # restored from epoch 1's checkpoint, not from scratch
    assert (run_dir / row.trial_dir / ".killed_once").read_text() == "2"
    (ckpt,) = (run_dir / row.trial_dir).glob("checkpoint_*")  # Ray keeps one: the final, the model alone
    assert (ckpt / "model.pt").is_file() and not (ckpt / "state.pt").exists()
    final = torch.load(ckpt / "model.pt", weights_only=True)["state"]
    assert final["epoch"] == 3 and "history" not in final  # the epochs are in history.parquet, once
    hist = pd.read_parquet(run_dir / "history.parquet")
    assert sorted(hist.epoch) == [1, 2, 3]


def _finished_trials(run_root):
    done = 0
    for result_json in run_root.glob("*/*/result.json"):
        lines = [json.loads(ln) for ln in result_json.read_text().splitlines() if ln.strip()]
        done += any(r.get("done") for r in lines)
    return done


def _reported_unfinished(run_root, epochs: int) -> bool:
    """Whether a trial has trained an epoch and not all ``epochs`` of them: read from the epochs its
    steps append to its own folder (Ray Tune writes result.json in a staging folder of its own and
    copies it into the run folder from time to time: a short trial can end before a line shows)."""
    for folder in {p.parent for p in run_root.glob(f"*/*/{EPOCHS_NAME}")}:
        (trained,) = local_epochs(folder, stacked=False)
        if 0 < len(trained) < epochs:
            return True
    return False


def kill_driver_after(sweep, storage, data_root, finished: int = 0, settle_s: float = 0.0, until=None,
                      env=None) -> None:
    """Start the sweep, wait until ``finished`` trials are done (and ``until(run_root)`` holds),
    then SIGKILL the driver and the local Ray it started, mid-sweep."""
    proc = subprocess.Popen(sweep_cmd(sweep, storage, data_root, "--num-cpus", "1"), cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while _finished_trials(storage / sweep.stem) < finished or (until and not until(storage / sweep.stem)):
        assert proc.poll() is None and time.time() < deadline, "the sweep ended before it could be interrupted"
        time.sleep(0.5)
    time.sleep(settle_s)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


class Payload:
    """Unpickling this calls ``Path.touch(marker)``: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def test_killed_driver_resumes_with_one_row_per_trial(tmp_path, data_root):
    sweep = write_sweep(tmp_path, "driver", TRIALS)
    storage = tmp_path / "runs"
    kill_driver_after(sweep, storage, data_root, finished=1)
    run_dir = only_run(storage, "driver")
    assert not (run_dir / "results.parquet").exists()
    # and someone swapped Ray's tuner.pkl, which --resume unpickles, for code
    marker = tmp_path / "ran"
    (run_dir / "tuner.pkl").write_bytes(pickle.dumps(Payload(marker)))
    sweep.write_text(TRIALS.replace("[0, 1, 2, 3]", "[0, 1, 2, 3, 4]"))  # edited since: refused, said why
    out = run_sweep(sweep, storage, data_root, "--num-cpus", "1", "--resume", expect=2)
    assert "planned other trials than this command does" in out.stderr and "4 trials planned then, 5 now" in out.stderr
    assert "it was started as: python -m raygen.sweep " in out.stderr
    sweep.write_text(TRIALS)
    out = run_sweep(sweep, storage, data_root, "--num-cpus", "1", "--resume")
    assert "tuner.pkl was changed after raygen last signed it; put back raygen's last signed copy" in out.stderr
    assert not marker.exists()
    assert "benchmark: 4 trials, resumed: wall" in out.stdout
    df = results(run_dir)
    assert len(df) == 4 and df.trial_id.is_unique and sorted(df.seed) == [0, 1, 2, 3]
    assert (df.status == "completed").all()
    hist = pd.read_parquet(run_dir / "history.parquet")
    assert (hist.groupby("trial_id").epoch.apply(sorted).apply(list) == [[1, 2, 3]] * 4).all()


def _epoch(checkpoint) -> int | None:
    """The epoch a checkpoint's state.pt holds; None when it is missing or cut short."""
    try:
        return int(torch.load(checkpoint / "state.pt", weights_only=False)["epoch"])
    except (OSError, RuntimeError, EOFError, KeyError):
        return None


EPOCHS = 40  # of 20 batches, 0.15-0.3 s each: longer than the 3 s before the kill


@pytest.mark.parametrize("left", ["a newer one", "none"])
def test_a_resumed_trial_whose_recorded_checkpoint_is_gone_goes_on_from_what_is_left(tmp_path, data_root, left):
    # Ray deletes a trial's previous checkpoint when it saves the next, but records the newest in its
    # experiment state only every 10 s or more: a driver killed between the two resumes with a record
    # naming a deleted checkpoint. Made certain here: Ray saves its state every second
    # (TUNE_GLOBAL_CHECKPOINT_S), the kill comes 3 s after the first checkpoint (the record names
    # one), then the trial's checkpoints are moved away.
    text = TRIALS.replace("{grid: [0, 1, 2, 3]}", "0").replace("epochs: 3", f"epochs: {EPOCHS}")
    sweep = write_sweep(tmp_path, "gone", text.replace("max_batches: 5", "max_batches: 20"))
    storage = tmp_path / "runs"
    kill_driver_after(sweep, storage, data_root, settle_s=3, env={**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1"},
                      until=lambda root: any(root.glob("*/*/checkpoint_*/state.pt")))
    run_dir = only_run(storage, "gone")
    (trial_dir,) = run_dir.glob("*_vae_mlp")  # named as the console names it
    ckpts = sorted(trial_dir.glob("checkpoint_*"))
    # the newest whole one: the kill can cut the one being copied short (a restart from it is
    # tested elsewhere)
    kept = [c for c in ckpts if _epoch(c) is not None][-1]
    saved_epoch = _epoch(kept)
    for c in ckpts:
        if c != kept:
            shutil.rmtree(c)
    if left == "none":
        shutil.rmtree(kept)
    else:
        kept.rename(trial_dir / "checkpoint_000099")
    out = run_sweep(sweep, storage, data_root, "--num-cpus", "1", "--resume")
    (row,) = results(run_dir).itertuples()
    assert row.status == "completed" and row.epoch == EPOCHS
    if left == "none":
        assert "restarted from epoch 0 when resumed: its checkpoint" in out.stdout
        assert "no other is left" in row.restarted and pd.isna(row.resumed_from_epoch)
    else:
        assert row.resumed_from_epoch == saved_epoch >= 1 and "restarted" not in out.stdout
    hist = pd.read_parquet(run_dir / "history.parquet")
    assert sorted(hist.epoch) == list(range(1, EPOCHS + 1))


def _worker_pid(run_root) -> int | None:
    for result_json in run_root.glob("*/*/result.json"):
        lines = [json.loads(ln) for ln in result_json.read_text().splitlines() if ln.strip()]
        if lines and not any(r.get("done") for r in lines):
            return int(lines[-1]["pid"])
    return None


def test_a_trial_whose_worker_stops_answering_is_failed_and_retried(tmp_path, data_root):
    # SIGSTOP: the process lives on, so Ray alone would wait for it forever
    text = TRIALS.replace("{grid: [0, 1, 2, 3]}", "0").replace("epochs: 3", "epochs: 60").replace(
        "max_batches: 5", "max_batches: 20").replace("max_failures: 2", "max_failures: 1\nstall_seconds: 6")
    sweep = write_sweep(tmp_path, "stall", text)
    storage = tmp_path / "runs"
    proc = subprocess.Popen(sweep_cmd(sweep, storage, data_root, "--num-cpus", "1"), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline, pid = time.time() + 300, None
    while pid is None:
        assert proc.poll() is None and time.time() < deadline, "the sweep ended before its worker could be stopped"
        time.sleep(0.2)
        pid = _worker_pid(storage / "stall")
    os.kill(pid, signal.SIGSTOP)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-2000:] + err[-2000:]
    assert "not heard from for" in err and "failing it, to be retried" in err
    (row,) = results(only_run(storage, "stall")).itertuples()
    assert row.status == "completed" and row.epoch == 60 and row.resumed_from_epoch >= 1


def test_ctrl_c_marks_unfinished_trials_interrupted_exits_130_and_resumes_from_the_checkpoint(tmp_path, data_root):
    # no max_concurrent: Ray makes every trial at once, the ones waiting for the CPU pending.
    # No checkpoint by the clock (checkpoint_seconds: 600): the one the trial resumes from is
    # the one Ctrl-C asked for.
    # Three trials: one running, two pending. Long enough to be interrupted mid-way, on a busy machine
    # too (30 epochs of 40 batches), on a small network: the resume trains what is left of all three
    text = TRIALS.replace("epochs: 3", "epochs: 30\n  hidden: [64]").replace("max_concurrent: 1\n", "").replace(
        "max_batches: 5", "max_batches: 40").replace("{grid: [0, 1, 2, 3]}", "{grid: [0, 1, 2]}")
    sweep = write_sweep(tmp_path, "ctrlc", text.replace("checkpoint_seconds: 0", "checkpoint_seconds: 600"))
    storage = tmp_path / "runs"
    proc = subprocess.Popen(sweep_cmd(sweep, storage, data_root, "--num-cpus", "1"), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 300
    while not _reported_unfinished(storage / "ctrlc", 30):
        assert proc.poll() is None and time.time() < deadline, "the sweep ended before it could be interrupted"
        time.sleep(0.1)
    assert not list((storage / "ctrlc").glob("*/*/checkpoint_*"))
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C as a terminal sends it: to the driver and Ray's processes
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    assert "--resume" in err and "interrupted:" in err
    assert "running trial(s) save a checkpoint first" in out
    run_dir = only_run(storage, "ctrlc")
    df = results(run_dir)
    assert len(df) == 3 and "interrupted" in set(df.status) and "stopped" not in set(df.status)
    assert sorted(df.seed) == [0, 1, 2]  # pending trials keep their configuration
    assert not set(df.status) - {"completed", "interrupted"}
    out = run_sweep(sweep, storage, data_root, "--num-cpus", "1", "--resume")
    df = results(run_dir)
    assert (df.status == "completed").all() and len(df) == 3
    assert df.resumed_from_epoch.notna().any()  # the interrupted trial went on from its checkpoint
    hist = pd.read_parquet(run_dir / "history.parquet")
    assert (hist.groupby("trial_id").epoch.apply(sorted).apply(list) == [list(range(1, 31))] * 3).all()
    with pytest.raises(ProcessLookupError):  # no process of the interrupted driver's group (its Ray) left behind
        os.killpg(proc.pid, 0)


def stop_while_running(tmp_path, data_root, name: str, *signals: int, group: bool = False):
    """A sweep of 40-epoch trials sent ``signals`` (0.3 s apart) once one has reported (``group``: to
    its whole process group, as ``timeout`` and batch schedulers send them); its output."""
    text = TRIALS.replace("epochs: 3", "epochs: 40").replace("max_batches: 5", "max_batches: 40")
    sweep = write_sweep(tmp_path, name, text.replace("checkpoint_seconds: 0", "checkpoint_seconds: 600"))
    storage = tmp_path / "runs"
    proc = subprocess.Popen(sweep_cmd(sweep, storage, data_root, "--num-cpus", "1"), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 300
    while not _reported_unfinished(storage / name, 40):
        assert proc.poll() is None and time.time() < deadline, "the sweep ended before it could be stopped"
        time.sleep(0.1)
    for sig in signals:
        os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
        time.sleep(0.3)
    out, err = proc.communicate(timeout=300)
    return proc, out, err, storage


def test_sigterm_stops_a_sweep_as_ctrl_c_does(tmp_path, data_root):
    """What ``timeout``, a batch scheduler or ``kill -- -PGID`` send, to the driver's whole process
    group: checkpoints, interrupted rows, exit 130, the resume command. (Ray's own processes are
    out of that group: they died with it, and the driver waited 60 s for them, then aborted.)"""
    proc, out, err, storage = stop_while_running(tmp_path, data_root, "term", signal.SIGTERM, group=True)
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    assert "--resume" in err and "interrupted:" in err and "Traceback" not in err
    df = results(only_run(storage, "term"))
    assert len(df) == 4 and "interrupted" in set(df.status)


def test_a_second_ctrl_c_stops_at_once_without_a_traceback(tmp_path, data_root):
    proc, out, err, storage = stop_while_running(tmp_path, data_root, "twice", signal.SIGINT, signal.SIGINT)
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    assert "Traceback" not in err and "Traceback" not in out
    assert "--resume" in err  # stopped at once, or the first stop finished writing first: resumable either way
    with pytest.raises(ProcessLookupError):  # nothing of its Ray left behind
        os.killpg(proc.pid, 0)


def test_a_killed_trial_is_a_failed_row_and_the_others_finish(tmp_path, data_root, faults):
    """A worker killed outright (as the OS kills one out of memory), with no retries left:
    that trial's row says so; the driver and the other trials go on."""
    sweep = write_sweep(tmp_path, "oom", TRIALS.replace("max_failures: 2", "max_failures: 0")
                        .replace("{grid: [0, 1, 2, 3]}", "{grid: [0, 1, 2]}")
                        + "variants:\n  - {}\n  - {model: faulty_vae_mlp, seed: 9, kill_at_epoch: 2}\n")
    out = run_sweep(sweep, tmp_path / "runs", data_root, "--num-cpus", "1", expect=1)
    df = results(only_run(tmp_path / "runs", "oom"))
    assert len(df) == 4 and sorted(df[df.status == "completed"].seed) == [0, 1, 2]
    (killed,) = df[df.seed == 9].itertuples()
    assert killed.status == "failed" and killed.error  # the reason Ray gave (the worker died)
    assert "1 failed" in out.stderr


def test_two_sweeps_started_together_keep_both_runs(tmp_path, data_root):
    sweep = write_sweep(tmp_path, "twice", TRIALS.replace("{grid: [0, 1, 2, 3]}", "{grid: [0, 1]}")
                        .replace("epochs: 3", "epochs: 1"))
    storage = tmp_path / "runs"
    procs = [subprocess.Popen(sweep_cmd(sweep, storage, data_root, "--num-cpus", "1"), cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=400)
        assert p.returncode == 0, out[-2000:] + err[-2000:]
    runs = sorted(d for d in (storage / "twice").iterdir() if d.is_dir())
    assert len(runs) == 2  # e.g. 20261121-101500 and 20261121-101500-2
    for run_dir in runs:
        df = results(run_dir)
        assert len(df) == 2 and (df.status == "completed").all() and (df.run == run_dir.name).all()


def _mount_tmpfs(path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_disk_filling_up_stops_the_sweep_cleanly_and_resume_finishes_it(tmp_path, data_root):
    """Storage on a 40 MB tmpfs; each resumable checkpoint of this model is about 12.5 MB (a
    finished trial's, its model alone, about 4 MB) and the guard wants room for two more
    beside 8 MB of slack: the disk is short during the first trial."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "40M"):
        pytest.skip("cannot mount a tmpfs here (needs root); test_a_half_written_ray_state_is_repaired covers it")
    try:
        sweep = write_sweep(tmp_path, "full", TRIALS.replace("max_batches: 5", "max_batches: 60"))
        out = run_sweep(sweep, disk, data_root, "--num-cpus", "1", expect=1)
        assert "stopped: the disk holding" in out.stderr and "--resume" in out.stderr
        assert "Traceback" not in out.stderr.split("stopped:")[-1]
        run_dir = only_run(disk, "full")
        first = results(run_dir)
        assert len(first) == 4 and "interrupted" in set(first.status)
        subprocess.run(["mount", "-o", "remount,size=400M", str(disk)], check=True)  # space freed
        run_sweep(sweep, disk, data_root, "--num-cpus", "1", "--resume", run_dir.name)
        df = results(run_dir)
        assert len(df) == 4 and (df.status == "completed").all() and sorted(df.seed) == [0, 1, 2, 3]
        hist = pd.read_parquet(run_dir / "history.parquet")
        assert (hist.groupby("trial_id").epoch.apply(sorted).apply(list) == [[1, 2, 3]] * 4).all()
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_half_written_ray_state_is_repaired_before_resume(tmp_path, data_root):
    """A write that failed half-way (what a full disk leaves) simulated: the driver killed
    mid-sweep, then Ray's experiment state cut in half."""
    sweep = write_sweep(tmp_path, "torn", TRIALS)
    storage = tmp_path / "runs"
    kill_driver_after(sweep, storage, data_root, finished=2, settle_s=3)  # past the next copy of Ray's state
    run_dir = only_run(storage, "torn")
    (state,) = run_dir.glob("experiment_state-*.json")
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    out = run_sweep(sweep, storage, data_root, "--num-cpus", "1", "--resume")
    assert "was damaged (a full disk?); put back raygen's last signed copy" in out.stderr
    df = results(run_dir)
    assert len(df) == 4 and sorted(df.seed) == [0, 1, 2, 3] and df.trial_id.is_unique
    assert set(df.status) <= {"completed", "failed"} and (df.status == "completed").sum() >= 2
    lost = df[df.status == "failed"]
    assert lost.error.str.contains("lost with Ray's damaged experiment state").all()
