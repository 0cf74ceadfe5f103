"""Compute once, reuse everywhere: reference statistics and trained classifiers live in
``default_cache_dir()`` (``$RAYGEN_CACHE`` or ``~/.cache/raygen``), shared by every trial
of every sweep on the machine.

A ``filelock.FileLock`` beside each entry makes concurrent trials (other Ray workers,
other sweeps) wait for the first one instead of computing the same thing again, and the
write is atomic (temporary file, then ``os.replace``), so a reader never sees half a file.
Each entry is signed (``core.signing``, ``<entry>.sig``, written before the entry): one that
this user's raygen did not write (a cache copied in, a classifier swapped) is recomputed.
"""
from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from raygen.core.signing import file_is_signed, sig_path, signature
from raygen.core.storage import atomic_write


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


def load_tensors(path: str | os.PathLike, keys: tuple[str, ...] = (), what: str = "file") -> dict:
    """A ``torch.save``d dict read with ``weights_only=True``: tensors, numbers, strings and
    containers only, so a crafted file cannot run code. Raises ``ValueError`` naming the file
    when it is unreadable or lacks one of ``keys``."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, foreign, or holding objects that are not data
        raise ValueError(f"{what} {path} unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    missing = [k for k in keys if not isinstance(obj, dict) or k not in obj]
    if missing:
        raise ValueError(f"{what} {path} lacks {', '.join(missing)}")
    return obj


def _load(path: Path, keys: tuple[str, ...], say: bool = True) -> Any | None:
    if not file_is_signed(path):
        if say:
            print(f"raygen: cache entry {path} was not written by raygen for this user (its signature "
                  f"is missing or wrong); recomputing it", file=sys.stderr, flush=True)
        return None
    try:
        return load_tensors(path, keys, "cache entry")
    except ValueError as exc:  # another raygen version's, damaged, or not data: rebuild it
        print(f"raygen: {exc}; recomputing it", file=sys.stderr, flush=True)
        return None


def load_or_build(path: str | os.PathLike, compute: Callable[[], dict], keys: tuple[str, ...] = ()
                  ) -> tuple[dict, bool]:
    """``(dict stored at path, True)``; on a miss, or an entry that is unreadable or lacks one
    of ``keys``, ``(compute(), False)``, computed once (under the lock) and stored. Entries
    hold tensors (on the CPU), numbers, strings and containers only: they are read back with
    ``weights_only=True``."""
    path = Path(path)
    if path.exists() and (obj := _load(path, keys, say=False)) is not None:  # said under the lock
        return obj, True
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.exists() and (obj := _load(path, keys)) is not None:  # another process finished it meanwhile
            return obj, True
        obj = compute()
        buf = io.BytesIO()
        torch.save(obj, buf)
        data = buf.getvalue()
        atomic_write(sig_path(path), lambda tmp: tmp.write_text(signature(data)))  # first: never an unsigned new entry
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
        return obj, False


def cached(path: str | os.PathLike, compute: Callable[[], dict], keys: tuple[str, ...] = ()) -> dict:
    """The dict stored at ``path``, computed and stored on a miss (see ``load_or_build``)."""
    return load_or_build(path, compute, keys)[0]
