"""Ray's experiment state survives a full disk: whole copies are kept, a damaged file is put
back from its copy before ``--resume``, and the guard says when the disk is about to fill."""
from __future__ import annotations

import json
import pathlib
import pickle

import pytest

from raygen.core.errors import RaygenError
from raygen.sweep.callbacks.runstate import BACKUP_DIR, backup, repair, short_of_space

EXP, GEN = "experiment_state-2026-11-21_10-00-00.json", "basic-variant-state-2026-11-21_10-00-00.json"


class Payload:
    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def run_folder(tmp_path, trials: int) -> pathlib.Path:
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / EXP).write_text(json.dumps({"trial_data": [f"t{i}" for i in range(trials)]}))
    (run / GEN).write_bytes(pickle.dumps({"_finished": False, "_points": list(range(trials))}))
    return run


def test_a_truncated_state_file_is_put_back_from_its_last_whole_copy(tmp_path):
    run = run_folder(tmp_path, 3)
    assert backup(run) == 2 and backup(run) == 0  # unchanged files are not copied again
    good = {name: (run / name).read_bytes() for name in (EXP, GEN)}
    for name, data in good.items():  # a write that failed half-way
        (run / name).write_bytes(data[: len(data) // 2])
    assert backup(run) == 0  # a damaged set is never copied over the good one
    assert sorted(repair(run)) == sorted([(EXP, "damaged (a full disk?)"), (GEN, "damaged (a full disk?)")])
    assert {name: (run / name).read_bytes() for name in good} == good
    assert repair(run) == []


def test_a_damaged_state_without_a_copy_is_a_clear_error(tmp_path):
    run = run_folder(tmp_path, 1)
    backup(run)
    (run / BACKUP_DIR / EXP).unlink()
    (run / EXP).write_bytes(b"")
    with pytest.raises(RaygenError, match="damaged .* start this sweep afresh"):
        repair(run)


def test_a_state_file_raygen_did_not_sign_is_replaced_by_its_signed_copy_or_refused(tmp_path, monkeypatch):
    run = run_folder(tmp_path, 2)
    (run / "tuner.pkl").write_bytes(pickle.dumps({"tuner": 1}))
    assert backup(run) == 3 and repair(run) == []
    signed = (run / "tuner.pkl").read_bytes()
    marker = tmp_path / "ran"
    (run / "tuner.pkl").write_bytes(pickle.dumps(Payload(marker)))  # crafted: would run code when Ray reads it
    assert repair(run) == [("tuner.pkl", "changed after raygen last signed it")]
    assert (run / "tuner.pkl").read_bytes() == signed and not marker.exists()
    # the crafted file in the copies too (or a folder from another user): refused, nothing run
    (run / BACKUP_DIR / "tuner.pkl").write_bytes(pickle.dumps(Payload(marker)))
    (run / "tuner.pkl").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(RaygenError, match="tuner.pkl was not written by raygen for this user .* add --trust-run"):
        repair(run)
    monkeypatch.setenv("RAYGEN_KEY", str(tmp_path / "colleague"))  # signed, but by another key
    with pytest.raises(RaygenError, match="not written by raygen for this user"):
        repair(run_folder(tmp_path, 2))
    assert repair(run, trust=True) == [] and not marker.exists()
    assert repair(run) == []  # vouched for once: signed as it is


def test_checking_a_pickled_state_file_runs_nothing_in_it(tmp_path):
    run = run_folder(tmp_path, 1)
    marker = tmp_path / "ran"
    (run / GEN).write_bytes(pickle.dumps(Payload(marker)))
    assert backup(run) == 2 and (run / BACKUP_DIR / GEN).is_file()
    assert not marker.exists()


def test_the_guard_stops_before_the_next_checkpoints_no_longer_fit(tmp_path):
    assert short_of_space(tmp_path, ckpt=1, running=2) is None
    why = short_of_space(tmp_path, ckpt=2**60, running=1)
    assert why and str(tmp_path) in why and "MB free" in why
