"""A trial whose worker stops answering is failed, so the sweep goes on.

Ray notices a worker that dies, not one that stops (SIGSTOP, a frozen node, a process stuck
with Python's lock held): its trial would wait forever, and the sweep with it. Each trial's
worker runs a heartbeat thread that calls the driver's ``Beats`` actor every ``BEAT_S``
seconds; the thread beats while the trial computes (a long epoch or evaluation is alive), and
stops only when the whole process does. The driver's ``Watchdog`` kills the actor of a
running trial not heard from for ``stall_seconds`` (the sweep's setting): Ray then sees it
die, and retries the trial from its last checkpoint within ``max_failures``.

Times are the ``Beats`` actor's own clock, so the nodes' clocks need not agree.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import time

import ray
from ray.tune import Callback

from raygen.sweep.callbacks.console import say

NAME = "raygen-beats"  # in the driver's namespace: each sweep's own
BEAT_S = 2.0
ASK_TIMEOUT_S = 10.0  # the driver's wait for Beats' answer before it asks again


@ray.remote(num_cpus=0)
class Beats:
    def __init__(self):
        self.last: dict[str, float] = {}

    def beat(self, key: str) -> None:
        self.last[key] = time.monotonic()

    def ages(self) -> dict[str, float]:
        now = time.monotonic()
        return {k: now - t for k, t in self.last.items()}


def start_beats():
    """The driver's ``Beats`` (before the trials start; it ends with the driver's Ray job), on the
    driver's node: a worker node the autoscaler takes away would take it along."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
    return Beats.options(name=NAME, get_if_exists=True, scheduling_strategy=here).remote()


class Heart:
    """A worker's heartbeat thread; ``key``: the trial it beats for (a reused actor changes it)."""

    def __init__(self):
        self.key: str | None = None
        self._stop = threading.Event()
        self._beats = None
        threading.Thread(target=self._run, name="raygen-heartbeat", daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._beats is None:
                # looked up until found: the driver names its Beats as the trials start, and a worker
                # that starts fast asks first (none at all in plain Ray Tune use: it looks on, cheaply)
                with contextlib.suppress(ValueError):
                    self._beats = ray.get_actor(NAME)
            if self._beats is not None and self.key:
                try:
                    self._beats.beat.remote(self.key)
                except Exception:  # the driver is gone: nothing to tell
                    return
            self._stop.wait(BEAT_S)

    def stop(self) -> None:
        self._stop.set()


class Watchdog(Callback):
    """On the driver: fail a running trial whose worker has not beaten for ``stall_seconds``."""

    def __init__(self, stall_seconds: float, every_s: float = BEAT_S):
        self.stall_seconds, self.every_s = stall_seconds, every_s
        self._last = 0.0
        self._beats = None
        self._asked = None  # the pending ``ages`` call: Tune's loop never waits on it

    def on_step_end(self, iteration, trials, **info):
        ages = self._answer()
        if ages is None:
            return
        for trial in trials:
            age = ages.get(trial.trial_id)
            actor = trial.temporary_state.ray_actor
            if trial.status != "RUNNING" or age is None or age < self.stall_seconds or actor is None:
                continue
            say(f"raygen: trial {trial.trial_id} not heard from for {age:.0f} s (stall_seconds "
                f"{self.stall_seconds:g}: its worker stopped or froze); failing it, to be retried from "
                f"its last checkpoint within max_failures", sys.stderr)
            ray.kill(actor, no_restart=True)
            self._beats.beat.remote(trial.trial_id)  # once: its retry beats afresh

    def _answer(self) -> dict[str, float] | None:
        """The ages ``Beats`` answered since the last step, if it has; asks again every ``every_s``.
        (Waiting for the answer held up Tune's loop: 1.9 s of a ``gae_cosine`` sweep's ``fit`` on
        this project's 2-core machine, 15 calls.)"""
        now = time.monotonic()
        if self._asked is None:
            if now - self._last < self.every_s:
                return None
            self._last = now
            try:
                self._beats = self._beats or ray.get_actor(NAME)
                self._asked = self._beats.ages.remote()
            except Exception:  # no Beats: look again later
                return None
        ready, _ = ray.wait([self._asked], timeout=0)
        if not ready:
            if now - self._last > ASK_TIMEOUT_S:  # no answer: ask afresh
                self._asked = None
            return None
        asked, self._asked = self._asked, None
        try:
            return ray.get(asked)
        except Exception:  # it did not answer this time: ask again later
            return None
