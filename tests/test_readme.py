"""Every command in the README runs: the sweep commands (with --smoke added where the
README shows the full-size run, which is the same code path at a larger size), --list,
the report command and the pandas snippet, against the results those commands wrote."""
from __future__ import annotations

import os
import re
import subprocess

import pandas as pd
import pytest

from conftest import REPO, SUBPROCESS_TIMEOUT

README = (REPO / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def commands(module: str) -> list[str]:
    cmds = []
    for block in blocks("bash"):
        for line in block.splitlines():
            cmd = line.split("#")[0].strip()
            if cmd.startswith(f"uv run python -m {module}"):
                cmds.append(cmd)
    return cmds


def sweep_commands() -> list[str]:
    return commands("raygen.sweep")


def test_readme_shows_the_two_commands():
    assert "uv run python -m raygen.sweep gan_vs_vae" in sweep_commands()
    assert any(line.strip().startswith("uv run pytest") for b in blocks("bash") for line in b.splitlines())


def test_readme_lists_every_sweep():
    from raygen.sweep.spec import available

    for name in available():
        assert f"| `{name}` |" in README, f"README's sweep table lacks {name}"


@pytest.mark.slow
def test_readme_commands_and_snippet_run(tmp_path, data_root):
    env = {**os.environ, "RAYGEN_STORAGE": str(tmp_path / "results"), "RAYGEN_DATA_ROOT": str(data_root)}
    # A sweep command differing from one already run only by --smoke / --data-root (the env
    # gives the same data root) is the same code path: run each sweep once, as its smoke run.
    seen = set()
    for cmd in sweep_commands():
        if cmd.split()[4:5] != ["--list"] and "--smoke" not in cmd:
            cmd += " --smoke"
        key = tuple(w for w in cmd.split() if w not in ("--data-root", "../shared/datasets"))
        if key in seen:
            continue
        seen.add(key)
        out = subprocess.run(cmd, shell=True, cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=SUBPROCESS_TIMEOUT)
        assert out.returncode == 0, f"{cmd}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    runs = sorted((tmp_path / "results" / "gan_vs_vae").iterdir())
    assert len(runs) >= 1
    df = pd.read_parquet(runs[-1] / "results.parquet")
    assert len(df) == 24 and (df.status == "completed").all()
    # the report commands, verbatim, from the folder the sweeps wrote results/ into
    report_cmds = commands("raygen.report")
    assert report_cmds, "README shows no `uv run python -m raygen.report` command"
    for path in runs:
        (path / "report.html").unlink(missing_ok=True)
    for cmd in report_cmds:
        out = subprocess.run(cmd, shell=True, cwd=tmp_path, env={**env, "UV_PROJECT": str(REPO)},
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{cmd}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    html = (runs[-1] / "report.html").read_text()
    assert "GAN vs VAE (Chaturvedula form)" in html and html.count("<img ") >= 24  # 24 trials' samples at least
    (snippet,) = [b for b in blocks("python") if "read_parquet" in b]
    out = subprocess.run(["python", "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "vae_conv" in out.stdout and "recon_mse" in out.stdout


@pytest.mark.slow
def test_readme_python_api_snippet_runs(tmp_path, data_root):
    """The "Use raygen from Python" block, verbatim but for the data folder, without Ray."""
    (snippet,) = [b for b in blocks("python") if "raygen.train" in b]
    snippet = snippet.replace('"../shared/datasets"', repr(str(data_root)))
    code = snippet + ("\nimport sys; assert 'ray' not in sys.modules, 'Ray was imported'"
                      "\nprint(again.result, sorted(scores))")
    out = subprocess.run(["python", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "vae_mlp.pt").exists() and "recon_mse" in out.stdout
