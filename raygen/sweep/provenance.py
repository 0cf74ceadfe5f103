"""Where a run came from, as an experiment tracker records it: the exact command, raygen's
version and git commit (and whether the tree had uncommitted changes), the versions of
Python, PyTorch, Ray and CUDA, the driver's host and devices. Written into the run's
metadata (``raygen.json``, the Parquet files') and shown in the report's header."""
from __future__ import annotations

import importlib.metadata
import platform
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str | None:
    """A git command in raygen's own source tree (None: not a checkout, or no git)."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance(argv: list[str]) -> dict[str, Any]:
    import torch

    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no")) if commit else None
    return {
        "command": shlex.join(["python", "-m", "raygen.sweep", *argv]),
        "raygen": _version("raygen"), "git_commit": commit, "git_dirty": dirty,
        "python": platform.python_version(), "torch": torch.__version__, "ray": _version("ray"),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "driver_host": socket.gethostname(),
        "driver_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] or ["cpu"],
        "python_executable": sys.executable,
    }

