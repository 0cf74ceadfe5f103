"""raygen: distributed sweeps of generative models on Ray Tune.

From Python, without Ray: ``raygen.train(config)`` builds, trains and evaluates one
configuration and returns its ``Trial`` (``.model``, ``.data``, ``.evaluate()``,
``.save(path)``); ``raygen.load(path)`` reads a saved one back. Imported on first use, so
``import raygen`` (and the report) stays free of torch.
"""
from __future__ import annotations

from typing import Any

__all__ = ["load", "train"]


def train(config: dict[str, Any], data_root: str | None = None, device: str = "cpu", out_dir: str | None = None,
          log: bool = False):
    """Build one configuration (the keys of a sweep file's ``config``), train it for its
    ``epochs`` and evaluate it; its ``Trial``, whose ``result`` holds the last epoch's numbers.
    ``out_dir``: also write its sample (and reconstruction) grids there."""
    from raygen.engine.trial import Trial

    trial = Trial(config, device=device, data_root=data_root, out_dir=out_dir)
    trial.result = trial.fit(log=log)
    return trial


def load(path: str, data_root: str | None = None, device: str = "cpu"):
    """A trial saved with ``Trial.save``: model, optimizers, epoch and history."""
    from raygen.engine.trial import Trial

    return Trial.load(path, device=device, data_root=data_root)
