"""Build-once caches shared by concurrent trials (a phase-1 network, reference statistics).

``load_or_build(path, build)`` returns what ``path`` holds, or builds it, saves it and
returns it. A file lock beside the file makes concurrent callers (trials in other
processes on this machine) wait for the first one instead of building it again, and the
write is atomic (a temporary file, then ``os.replace``), so a crash never leaves half a
file that later trials would load.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch


def load_or_build(path: Path, build: Callable[[], dict]) -> tuple[dict, bool]:
    """``(torch.load(path), True)``, or ``(build(), False)`` after saving it at ``path``.
    ``build`` must return tensors, numbers, strings, lists and dicts (loaded with
    ``weights_only=True``)."""
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.exists():
            try:
                return torch.load(path, map_location="cpu", weights_only=True), True
            except Exception as exc:  # unreadable (another torch version, a damaged disk): rebuild it
                print(f"raygen: cache {path} is unreadable ({type(exc).__name__}: {exc}); rebuilding", flush=True)
        state = build()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
        return state, False
