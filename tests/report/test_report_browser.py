"""End to end: a real (smoke-sized) sweep on a local Ray writes its report, which headless
Chromium renders with no console errors and every image loaded; the screenshot is kept in
``artifacts/`` (git-ignored) for a human to look at."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

import browser
from conftest import REPO, SUBPROCESS_TIMEOUT

pytestmark = pytest.mark.slow  # starts Ray (or Chromium)

SWEEP = """
description: report end to end
max_failures: 0
config:
  dataset: mnist
  split: test
variants:
  - {model: vae_mlp, latent_dim: {grid: [2, 8]}}
  - {model: gan_mlp}
  - {model: faulty_vae_mlp, seed: 9, fail_at_epoch: 1}  # tests/plugins/faults.py
  - {model: faulty_vae_mlp, seed: 9, nan_at_epoch: 2}
"""  # 5 trials: kept small, a Ray trial costs ~10 s of overhead here
ARTIFACTS = REPO / "artifacts"


def test_smoke_sweep_report_renders_in_chromium(tmp_path, data_root, faults):
    if not browser.available():
        pytest.fail("headless Chromium is needed: apt-get install -y chromium chromium-driver (.ci/run does)")
    sweep = tmp_path / "report_e2e.yaml"
    sweep.write_text(SWEEP)
    out = subprocess.run([sys.executable, "-m", "raygen.sweep", str(sweep), "--smoke", "--set", "epochs=2",
                          "--data-root", str(data_root), "--storage", str(tmp_path / "runs"), "--num-cpus", "2"],
                         cwd=REPO, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]  # 1: a trial fails on purpose
    (run_dir,) = (tmp_path / "runs" / "report_e2e").iterdir()
    page = run_dir / "report.html"
    assert f"report: {page}" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report_e2e.png"
    seen = browser.inspect(page, shot, width=1500)
    shutil.copy(page, ARTIFACTS / "report_e2e.html")
    print(f"\nscreenshot: {shot}\nreport: {ARTIFACTS / 'report_e2e.html'}")

    assert seen["errors"] == [], seen["errors"]
    broken = [i["alt"] for i in seen["images"] if not (i["complete"] and i["w"] > 0 and i["h"] > 0)]
    assert not broken, broken
    # 3 completed trials: 3 sample grids, 2 reconstructions (VAEs), and the figures
    alts = [i["alt"] for i in seen["images"]]
    assert sum("samples_png" in a for a in alts) == 3 and sum("reconstructions_png" in a for a in alts) == 2
    assert {"Metrics against latent size", "Quality against training time (Pareto view)"} <= set(alts)
    assert any(a.startswith("Training loss per epoch: each model's own objective") for a in alts)
    text = seen["text"]
    assert "GAN vs VAE (Chaturvedula form)" in text
    # "best" is the first metric present in the report's order (cls-FID once the metrics ran)
    assert re.search(r"Best by [^:\n]+ ↓: (vae_mlp \(latent size=|gan_mlp)", text), text[:1500]
    assert "Best latent size by" in text
    assert "Failed and diverged trials (2)" in text and "fail_at_epoch=1: failing on purpose" in text
    assert "non-finite loss at epoch 2" in text
    assert "trials\n5: 3 completed, 1 failed, 1 diverged" in text.replace("\t", "\n")
    assert "devices\ncpu" in text.replace("\t", "\n")
    assert shot.stat().st_size > 50_000 and seen["height"] > 2000
