"""Compute once, reuse everywhere: reference statistics and trained classifiers live in
``default_cache_dir()`` (``$RAYGEN_CACHE`` or ``~/.cache/raygen``), shared by every trial
of every sweep on the machine.

A ``filelock.FileLock`` beside each entry makes concurrent trials (other Ray workers,
other sweeps) wait for the first one instead of computing the same thing again, and the
write is atomic (temporary file, then ``os.replace``), so a reader never sees half a file.
"""
from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from .storage import atomic_write


def default_cache_dir() -> Path:
    """Caches shared by every sweep on this machine (reference statistics, classifiers)."""
    return Path(os.environ.get("RAYGEN_CACHE", Path.home() / ".cache" / "raygen"))


def shared_cache_dir(sweep_dir: str | os.PathLike | None, cache_dir: str | os.PathLike) -> Path:
    """``<sweep>/cache`` when the sweep's storage is a local folder (shared by its trials and
    runs), else ``cache_dir``: plain ``Trial`` use, or remote storage such as s3://, which a
    file lock cannot guard."""
    local = sweep_dir is not None and Path(sweep_dir).is_absolute()
    return Path(sweep_dir) / "cache" if local else Path(cache_dir)


def entry(cache_dir: str | os.PathLike, kind: str, *key: Any) -> Path:
    """``<cache_dir>/<kind>/<key parts joined by '-'>.pt``, with path-unsafe characters replaced."""
    name = "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", str(k)).strip("_") for k in key)
    return Path(cache_dir) / kind / f"{name}.pt"


def _load(path: Path) -> Any | None:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # written by another raygen version, or damaged by hand: rebuild it
        print(f"raygen: cache entry {path} unreadable ({type(exc).__name__}: {exc}); recomputing it",
              file=sys.stderr, flush=True)
        return None


def load_or_build(path: str | os.PathLike, compute: Callable[[], Any]) -> tuple[Any, bool]:
    """``(object stored at path, True)``; on a miss ``(compute(), False)``, computed once
    (under the lock) and stored. Objects are saved with ``torch.save``: keep tensors on the CPU."""
    path = Path(path)
    if path.exists() and (obj := _load(path)) is not None:
        return obj, True
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.exists() and (obj := _load(path)) is not None:  # another process finished it meanwhile
            return obj, True
        obj = compute()
        atomic_write(path, lambda tmp: torch.save(obj, tmp))
        return obj, False


def cached(path: str | os.PathLike, compute: Callable[[], Any]) -> Any:
    """The object stored at ``path``, computed and stored on a miss (see ``load_or_build``)."""
    return load_or_build(path, compute)[0]
