"""A local sweep's Ray: token authentication on, with an owner-only token (Ray's servers listen
on every interface; Ray resolves a loopback node address to the machine's own)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from raygen.sweep.tuner import keep_token_private

from conftest import REPO, SUBPROCESS_TIMEOUT


@pytest.fixture
def home(tmp_path, monkeypatch):
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_token_is_written_owner_only(home):
    path = keep_token_private()
    assert path == home / ".ray" / "auth_token" and mode(path) == 0o600
    assert len(path.read_text()) == 64 and int(path.read_text(), 16)  # 256 bits, hex
    assert keep_token_private().read_text() == path.read_text()  # kept, not replaced


def test_a_token_readable_by_others_is_made_owner_only(home):
    path = home / ".ray" / "auth_token"
    path.parent.mkdir()
    path.write_text("abc")
    path.chmod(0o644)
    assert keep_token_private() == path and mode(path) == 0o600 and path.read_text() == "abc"


def test_a_token_from_the_environment_or_auth_off_leaves_the_disk_alone(home, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert keep_token_private() is None and not (home / ".ray").exists()


@pytest.mark.slow
def test_a_local_ray_authenticates_with_the_private_token_and_is_its_own(home):
    """Without --address a sweep starts its own Ray even when the environment names another cluster
    (``ray job submit`` sets $RAY_ADDRESS; a `ray start` on the machine leaves its address on disk):
    Ray would join that one, and refuse the local sweep's num_cpus with a traceback."""
    code = ("import os, stat, ray; from raygen.sweep.tuner import start_ray; r, started = start_ray(None, 1); "
            "p = os.path.expanduser('~/.ray/auth_token'); "
            "print(started, oct(stat.S_IMODE(os.stat(p).st_mode)), os.environ.get('RAY_AUTH_MODE'), "
            "ray.cluster_resources()['CPU']); ray.shutdown()")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=SUBPROCESS_TIMEOUT,
                         env={**os.environ, "HOME": str(home), "RAY_ADDRESS": "127.0.0.1:9"})  # nothing there
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-4:] == ["True", "0o600", "token", "1.0"]


@pytest.mark.slow  # starts Ray
def test_a_worker_that_starts_before_the_drivers_beats_exist_still_beats(home):
    """A trial's worker can ask for the driver's Beats before the driver's request to make it has
    named it (a fast start): its heart looks again until found, so the watchdog hears it."""
    code = """
import time, ray
from raygen.sweep.tuner import start_ray
from raygen.sweep import liveness
start_ray(None, 1)
@ray.remote(num_cpus=0)
class Worker:
    def __init__(self):
        self.heart = liveness.Heart()
        self.heart.key = "t1"
    def ok(self):
        return True
w = Worker.remote()
ray.get(w.ok.remote())              # its heart is running, and no Beats exists yet
time.sleep(1)
beats = liveness.start_beats()
deadline = time.time() + 30
while "t1" not in ray.get(beats.ages.remote()) and time.time() < deadline:
    time.sleep(0.5)
print("heard", "t1" in ray.get(beats.ages.remote()))
ray.shutdown()
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=SUBPROCESS_TIMEOUT, env={**os.environ, "HOME": str(home)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["heard", "True"], out.stdout[-2000:] + out.stderr[-2000:]


@pytest.mark.slow  # starts Ray twice
def test_a_local_ray_starts_only_the_services_a_sweep_on_one_machine_uses(home):
    """No autoscaler monitor (nothing to scale), no log monitor unless --verbose shows the workers'
    output, no workers started ahead of need (Tune's trial actors never take them): each took CPU
    from Ray's start, and the monitors a second each from its shutdown."""
    code = """
import os, time, ray
from raygen.sweep.tuner import start_ray
@ray.remote(num_cpus=0)
class Actor:
    def ok(self):
        return True
for verbose in (False, True):
    start_ray(None, 2, verbose=verbose)
    node = ray._private.worker._global_node
    ray.get(Actor.remote().ok.remote())
    time.sleep(1)
    log = open(os.path.join(node.get_logs_dir_path(), "raylet.out")).read()
    print(verbose, sorted(node.all_processes), log.count("Started worker process"))
    ray.shutdown()
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=SUBPROCESS_TIMEOUT, env={**os.environ, "HOME": str(home)})
    assert out.returncode == 0, out.stderr[-2000:]
    quiet, verbose = (line for line in out.stdout.splitlines() if line.startswith(("False", "True")))
    for line in (quiet, verbose):
        assert "'monitor'" not in line and "'gcs_server'" in line and "'raylet'" in line, line
        assert line.endswith(" 1"), f"workers started beside the one actor's: {line}"
    assert "'log_monitor'" not in quiet and "'log_monitor'" in verbose, (quiet, verbose)
