"""Whether stacking pays: ``stack: auto`` (``raygen.sweep.plan.probe_stacks``) keeps a group
stacked only where a short measured probe on the device at hand runs it at least ``PAYS``
times faster than its trials one after another. A step's cost depends on the network, the
batch and the device: small fully connected networks are dispatch-bound and gain (the cosine
experiment's, 2.6x on one CPU thread), while the Table 3 VAE already fills a CPU core and
loses (0.8x; benchmarks/README.md).
"""
from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
import torch

from raygen.engine.stacking import StackedTrial
from raygen.engine.trial import Trial, data_cache_kept
from raygen.record import keys

PAYS = 1.15  # ``stack: auto`` stacks a group whose probe runs at least this much faster stacked
PROBE_K = 8  # at most this many members probed (the probe's time is bounded; larger stacks gain more)


def probe(configs: list[dict[str, Any]], device: torch.device | str = "cpu", data_root: str | None = None,
          steps: int = 8, threads: int | None = None) -> tuple[float, float, int]:
    """(seconds per step of K stacked, of one trial alone, K): at least ``steps`` batches of each,
    epochs included (a small dataset's epoch is one step, and its bookkeeping counts), after a
    warm-up epoch, on ``device`` with ``threads`` torch threads (a trial's), with the group's
    first K <= PROBE_K members (a step's cost depends on the network, the batch and the device,
    not on the weights)."""
    group = [{**c, "epochs": 10**6, "max_batches": steps, "eval_every": 0} for c in configs[:PROBE_K]]

    def per_step(epoch) -> float:
        epoch()  # warm-up: first-call costs (kernel choice, allocations)
        n, t0 = 0, time.perf_counter()
        while n < steps:
            result = epoch()
            n += (result[0] if isinstance(result, list) else result)[keys.BATCHES]
        return (time.perf_counter() - t0) / n

    seeds = torch.get_rng_state(), np.random.get_state(), random.getstate()  # the probe leaves no trace
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        with data_cache_kept():
            alone = per_step(Trial(group[0], device=device, data_root=data_root).train_epoch)
            stacked = per_step(StackedTrial(group, device=device, data_root=data_root).train_epoch)
    finally:
        torch.set_num_threads(before)
        torch.set_rng_state(seeds[0])
        np.random.set_state(seeds[1])
        random.setstate(seeds[2])
    return stacked, alone, len(group)
