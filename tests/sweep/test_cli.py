"""The CLI as a user meets it: --list, and bad names fail with the choices, no traceback."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, SUBPROCESS_TIMEOUT


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raygen.sweep", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_list_prints_every_sweep_with_a_description():
    out = cli("--list")
    assert out.returncode == 0
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("gan_vs_vae"))
    assert "GAN vs VAE" in line


@pytest.mark.slow  # a fresh Python process (torch's import) or a model trained end to end
def test_unknown_sweep_fails_with_the_list_and_no_traceback():
    out = cli("nope")
    assert out.returncode != 0
    assert "unknown sweep 'nope'" in out.stderr and "gan_vs_vae" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


@pytest.mark.slow  # a fresh Python process (torch's import) or a model trained end to end
def test_bad_override_fails_before_ray_starts():
    out = cli("gan_vs_vae", "--set", "latnt_dim=3")
    assert out.returncode == 2 and "unknown config key(s) latnt_dim" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_resume_command_names_everything_needed_to_find_the_run(tmp_path, monkeypatch):
    import shlex

    from raygen.sweep.cli import parse_args
    from raygen.sweep.outcome import resume_command

    sweep = tmp_path / "mine.yaml"
    sweep.write_text("config: {model: vae_mlp}\n")
    monkeypatch.chdir(tmp_path)
    args = parse_args(["mine.yaml", "--storage", "runs", "--data-root", "data", "--smoke", "--set", "epochs=3",
                       "--num-cpus", "2", "--cpus-per-trial", "1.5"])
    cmd = shlex.split(resume_command(args, "20261206-101010", retry=True))
    assert cmd[:4] == [sys.executable, "-m", "raygen.sweep", str(sweep)]
    opts = dict(zip(cmd[4::2], cmd[5::2]))
    assert opts["--resume"] == "20261206-101010" and opts["--storage"] == str(tmp_path / "runs")
    assert opts["--data-root"] == str(tmp_path / "data") and opts["--num-cpus"] == "2"
    assert opts["--cpus-per-trial"] == "1.5" and opts["--set"] == "epochs=3"
    assert cmd[-2:] == ["--smoke", "--retry-failed"]
    remote = parse_args(["gae_cosine", "--storage", "s3://bucket/runs"])
    assert "--storage s3://bucket/runs" in resume_command(remote, "r")


@pytest.mark.slow  # two local Rays
def test_the_printed_retry_command_works_as_printed_from_another_folder(tmp_path, data_root, faults):
    import shlex

    sweep = tmp_path / "sweeps" / "failing.yaml"
    sweep.parent.mkdir()
    sweep.write_text("max_failures: 0\nconfig: {model: faulty_vae_mlp, dataset: mnist, epochs: 1, max_batches: 2, "
                     "eval_samples: 100, limit: 500, fail_at_epoch: 1}\n")
    first = subprocess.run([sys.executable, "-m", "raygen.sweep", "sweeps/failing.yaml", "--no-report",
                            "--storage", "runs", "--data-root", str(data_root), "--num-cpus", "1"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert first.returncode == 1, first.stderr[-2000:]
    line = next(ln for ln in first.stderr.splitlines() if "rerun them:" in ln)
    again = shlex.split(line.split("rerun them:", 1)[1])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    second = subprocess.run(again, cwd=elsewhere, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    # it found the run and retried the failed trial (which fails again, on purpose)
    assert second.returncode == 1 and "no run" not in second.stderr, second.stderr[-2000:]
    assert "fail_at_epoch=1: failing on purpose" in second.stderr
    assert not (elsewhere / "runs").exists()  # the run stayed where it was


def test_a_cluster_keeps_the_gpus_its_autoscaler_will_add_and_this_machine_drops_what_it_lacks(capsys):
    import argparse

    from raygen.core.errors import RaygenError
    from raygen.sweep.plan import make_plan
    from raygen.sweep.spec import Sweep
    from raygen.sweep.tuner import resources

    plan = make_plan(Sweep(name="r", config={"model": "vae_mlp", "dataset": "mnist"},
                           resources={"cpus_per_trial": 1, "gpus_per_trial": 0.25}))
    args = lambda address: argparse.Namespace(address=address, cpus_per_trial=None, gpus_per_trial=None)
    head_only = {"memory": 1e9}  # a head of CPU: 0, no worker up yet
    assert resources(plan, args("10.0.0.1:6379"), head_only) == {"cpu": 1.0, "gpu": 0.25}
    assert "wait for its autoscaler to add nodes" in capsys.readouterr().out
    assert resources(plan, args(None), {"CPU": 2.0}) == {"cpu": 1.0, "gpu": 0.0}  # here: CPU-only, said
    assert "running CPU-only" in capsys.readouterr().out
    with pytest.raises(RaygenError, match="exceeds the 2.0 CPUs"):
        resources(plan, argparse.Namespace(address=None, cpus_per_trial=4.0, gpus_per_trial=0.0), {"CPU": 2.0})


@pytest.mark.slow  # a fresh Python process
def test_the_checks_before_rays_start_leave_pandas_and_ray_tune_for_while_it_starts(data_root, tmp_path):
    """Everything a sweep checks before Ray starts runs without Ray, Ray Tune or pandas: they are
    imported in a thread while ``ray.init`` waits for Ray's processes (2-3 s of every command)."""
    code = ("import sys; from raygen.sweep import cli; "
            f"a = cli.parse_args(['gae_cosine', '--smoke', '--data-root', {str(data_root)!r}, "
            f"'--storage', {str(tmp_path)!r}]); cli.prepare(a); "
            "print(sorted(m for m in ('ray', 'ray.tune', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=SUBPROCESS_TIMEOUT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[-1] == "[]", out.stdout


def test_an_environment_without_bytecode_that_python_will_not_write_is_noticed(tmp_path, monkeypatch):
    import compileall

    from raygen.sweep.preflight import uncompiled

    pkg = tmp_path / "fresh_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    assert uncompiled("fresh_pkg")
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE")
    assert not uncompiled("fresh_pkg")  # Python compiles it once, on the first import
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    assert compileall.compile_dir(str(pkg), quiet=1)
    assert not uncompiled("fresh_pkg")
    assert not uncompiled("no_such_module_here")


def test_a_resumed_state_that_is_not_rays_is_one_line_and_a_fresh_runs_bug_is_not_hidden(tmp_path):
    """Ray restores its tuner by setting attributes from tuner.pkl: a foreign pickle (vouched for by
    --trust-run) surfaces as an AttributeError inside fit, said as the run's, not as a traceback."""
    import argparse

    from ray.tune.impl.tuner_internal import TunerInternal

    from raygen.core.errors import RaygenError
    from raygen.sweep.cli import execute

    class Foreign:
        def __init__(self, obj):
            self.obj = obj

        def fit(self):
            raise AttributeError("'TunerInternal' object has no attribute '_tuner_kwargs'", obj=self.obj)

    args = argparse.Namespace(resume="latest")
    with pytest.raises(RaygenError, match=r"--resume: Ray's state in .*r1 is not a run Ray Tune can continue "
                                          r"\(AttributeError: 'TunerInternal'.*start the sweep afresh"):
        execute(None, args, Foreign(TunerInternal.__new__(TunerInternal)), str(tmp_path), "r1", [], {}, None, 0.0)
    with pytest.raises(AttributeError):  # one of raygen's own objects: a bug, whose traceback stays
        execute(None, args, Foreign(args), str(tmp_path), "r1", [], {}, None, 0.0)
    args.resume = None
    with pytest.raises(AttributeError):  # a new run's: the same
        execute(None, args, Foreign(TunerInternal.__new__(TunerInternal)), str(tmp_path), "r1", [], {}, None, 0.0)
