"""The CLI as a user meets it: --list, and bad names fail with the choices, no traceback."""
from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raygen.sweep", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_list_prints_every_sweep_with_a_description():
    out = cli("--list")
    assert out.returncode == 0
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("gan_vs_vae"))
    assert "GAN vs VAE" in line


def test_unknown_sweep_fails_with_the_list_and_no_traceback():
    out = cli("nope")
    assert out.returncode != 0
    assert "unknown sweep 'nope'" in out.stderr and "gan_vs_vae" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_bad_override_fails_before_ray_starts():
    out = cli("gan_vs_vae", "--set", "latnt_dim=3")
    assert out.returncode == 2 and "unknown config key(s) latnt_dim" in out.stderr
    assert "Traceback" not in out.stderr
