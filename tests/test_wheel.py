"""An installed wheel is the whole product: it lists its sweeps and runs one from a folder
far from the source tree (the sweep files are package data)."""
from __future__ import annotations

import shutil
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

from conftest import REPO, SUBPROCESS_TIMEOUT


@pytest.mark.slow  # builds the wheel and starts Ray
def test_an_installed_wheel_lists_and_runs_a_smoke_sweep_without_the_source_tree(tmp_path):
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH (it builds the wheel)")
    subprocess.run([uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(REPO)], check=True,
                   capture_output=True, timeout=SUBPROCESS_TIMEOUT)
    (wheel,) = (tmp_path / "dist").glob("raygen-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    # The dependencies come from this environment (a .pth line is a path, not a site folder:
    # the source tree's editable install there is not seen); raygen itself only from the wheel.
    purelib = sysconfig.get_path("purelib")
    venv_site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                    capture_output=True, text=True, check=True).stdout.strip())
    (venv_site / "deps.pth").write_text(f"{purelib}\n")
    subprocess.run([uv, "pip", "install", "--python", str(python), "--no-deps", str(wheel)], check=True,
                   capture_output=True, timeout=SUBPROCESS_TIMEOUT)
    away = tmp_path / "elsewhere"
    away.mkdir()

    def sweep(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(python), "-m", "raygen.sweep", *args], cwd=away, capture_output=True, text=True,
                              timeout=SUBPROCESS_TIMEOUT)

    where = subprocess.run([str(python), "-c", "import raygen; print(raygen.__file__)"], cwd=away,
                           capture_output=True, text=True, check=True).stdout
    assert str(venv_site) in where and str(REPO) not in where
    listed = sweep("--list")
    assert listed.returncode == 0 and "gae_cosine" in listed.stdout and "savae_beta" in listed.stdout
    out = sweep("gae_cosine", "--smoke", "--no-report", "--num-cpus", "2", "--storage", str(away / "runs"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert list((away / "runs" / "gae_cosine").glob("*/results.parquet"))
