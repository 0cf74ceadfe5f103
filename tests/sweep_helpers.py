"""Helpers for tests that run real sweeps (subprocess or in-process) on a local Ray."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from conftest import REPO, SUBPROCESS_TIMEOUT


def write_sweep(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def sweep_cmd(sweep: Path, storage: Path, data_root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "raygen.sweep", str(sweep), "--no-report", "--data-root", str(data_root),
            "--storage", str(storage), *extra]


def run_sweep(sweep: Path, storage: Path, data_root: Path, *extra: str, timeout: int = SUBPROCESS_TIMEOUT, env=None,
              expect: int = 0):
    """Run a sweep in a subprocess; ``expect``: its exit status (1: some trials gave no result)."""
    out = subprocess.run(sweep_cmd(sweep, storage, data_root, *extra), cwd=REPO, capture_output=True, text=True,
                         timeout=timeout, env=env)
    assert out.returncode == expect, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def only_run(storage: Path, sweep: str) -> Path:
    (run_dir,) = (storage / sweep).iterdir()
    return run_dir


def results(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "results.parquet")
