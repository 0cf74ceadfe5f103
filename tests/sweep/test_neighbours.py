"""A trial counts the trials training beside it on its node (a time is comparable only when
that is known)."""
from __future__ import annotations

import subprocess
import sys

from raygen.sweep.neighbours import Neighbours


def test_live_trials_beside_are_counted_and_marks_of_ended_ones_removed(tmp_path):
    me = Neighbours(tmp_path)
    assert me.look() == {"trials_beside_max": 0, "trials_beside_mean": 0.0}
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    try:
        (tmp_path / str(other.pid)).touch()
        (tmp_path / str(ended.pid)).touch()
        assert me.look() == {"trials_beside_max": 1, "trials_beside_mean": 0.5}
        assert not (tmp_path / str(ended.pid)).exists()  # an ended process's mark is cleared
    finally:
        other.kill()
        other.wait()
    assert me.look()["trials_beside_max"] == 1  # the most seen so far
    me.restart()
    assert me.look()["trials_beside_max"] == 0  # a new trial on the same actor counts afresh
    me.close()
    assert not me.mine.exists()
