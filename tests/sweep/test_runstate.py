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
    assert sorted(repair(run)) == sorted([EXP, GEN])
    assert {name: (run / name).read_bytes() for name in good} == good
    assert repair(run) == []


def test_a_damaged_state_without_a_copy_is_a_clear_error(tmp_path):
    run = run_folder(tmp_path, 1)
    (run / EXP).write_bytes(b"")
    with pytest.raises(RaygenError, match="damaged .* start this sweep afresh"):
        repair(run)


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
