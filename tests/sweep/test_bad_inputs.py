"""Every bad value is one clear line and exit 2 before Ray starts (and before any run folder
is made): config values, sweep-file keys, search spaces, schedulers, command-line numbers,
storage, and files that are not sweep files."""
from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest

from raygen.sweep.cli import main

from conftest import REPO

BASE = """
description: bad inputs
config:
  dataset: mnist
  split: test
  model: vae_mlp
  epochs: 1
"""


def run(tmp_path, capsys, sweep_text: str | None = None, *args: str) -> tuple[int, str]:
    argv = list(args)
    if sweep_text is not None:
        path = tmp_path / "bad.yaml"
        path.write_text(sweep_text)
        argv = [str(path), *argv]
    code = main([*argv, "--storage", str(tmp_path / "runs"), "--no-report"])
    err = capsys.readouterr().err
    return code, err


CONFIG_CASES = [
    ("epochs: 0", "epochs=0 is not allowed; epochs must be a number >= 1"),
    ("epochs: true", "epochs=True is not a valid int"),
    ("batch_size: -1", "batch_size=-1 is not allowed"),
    ("batch_size: 0", "batch_size=0 is not allowed"),
    ("latent_dim: 0", "latent_dim=0 is not allowed"),
    ("hidden: [0]", "hidden=[0] is not allowed"),
    ("hidden: 512,256", "hidden='512,256' is not a valid list of int (a YAML list: [a, b])"),
    ("model: VAE_MLP", "unknown model 'VAE_MLP'. Did you mean 'vae_mlp'?"),
    ("lr: -1", "lr=-1 is not allowed; lr must be a number > 0"),
    ("arch: transformer", "arch='transformer' is not allowed; arch must be one of conv, mlp, resnet"),
    ("act: gelu", "act='gelu' is not allowed"),
    ("split: validation", "split='validation' is not allowed; split must be one of train, test, auto"),
    ("eval_samples: 100000000000", "eval_samples=100000000000 is not allowed"),
    ("lr: .nan", "lr=nan is not a valid float"),
    ("hidden: []", "hidden=[] is empty"),
    ("kill_at_epoch: 2", "unknown config key(s) kill_at_epoch"),  # the test suite's fault injection is no setting
    ("1: 2", "key 1 under config is not a name"),  # YAML reads 1 as a number
    ("train_precision: fp16", "train_precision='fp16' is not allowed; train_precision must be one of fp32, tf32, bf16"),
    # no GPU here (the suite's machines have none): TF32 is refused before anything runs
    ("train_precision: tf32", "train_precision tf32 needs an NVIDIA GPU (Ampere or later)"),
]


def test_the_valid_keys_listed_hold_no_testing_aids(tmp_path, capsys):
    code, err = run(tmp_path, capsys, BASE + "  epoch: 3\n")
    assert code == 2 and "Did you mean 'epochs'?" in err and "Trainer keys: batch_size," in err
    assert "at_epoch" not in err and "_fail" not in err


SWEEP_CASES = [
    ("max_failures: lots", "max_failures='lots' is not a valid int"),
    ("max_failures: -1", "max_failures=-1 is not allowed"),
    ("scheduler: {hyperband: {}}", "is not one raygen knows"),
    ("scheduler: {asha: {metric: loss, grace_periods: 2}}",
     "unknown key(s) grace_periods. Did you mean 'grace_period'?"),
    ("scheduler: {asha: {grace_period: -2}}", "grace_period=-2 must be a whole number >= 1"),
    ("resources: {cpus_per_trial: -1}", "resources cpus_per_trial=-1 must be a finite number > 0"),
    ("resources: {cpus_per_trial: .nan}", "resources cpus_per_trial=nan must be a finite number > 0"),
    ("resources: {gpus_per_trial: .inf}", "resources gpus_per_trial=inf must be a finite number >= 0"),
    # raygen's own fields: the sweep's name is its file's (a name: ../.. would write outside --storage)
    ("name: ../../escaped", "unknown key(s) name (the sweep's name is its file's)"),
    ("path: /elsewhere", "unknown key(s) path"),
    ("description: twice", "'description' is given twice (line 8, column 1)"),
    ("metric: bogus_metric", "metric: 'bogus_metric' is no number a trial reports"),
    ("metric: recon_mes", "Did you mean 'recon_mse'?"),
    ("scheduler: {asha: {metric: bogus}}", "scheduler asha: metric: 'bogus' is no number a trial reports"),
    # checked on every run, not first when --smoke is given
    ("smoke: {epochz: 1}", "smoke: unknown config key(s) epochz"),
    ("smoke: {batch_size: 0}", "smoke: trainer config: batch_size=0 is not allowed"),
    ("resources: {1: 2}", "key 1 under resources is not a name"),  # YAML reads 1 as a number, anywhere
    ("scheduler: {asha: {true: 2}}", "key True under scheduler.asha is not a name"),
    ("metric: val_train_time_s", "'val_train_time_s' is no number a trial reports"),  # val_: the metrics' twins
    ("metric: status", "'status' is no number a trial reports"),
    ("stack: nonsense", "stack='nonsense': give a list of keys (e.g. [seed]), auto, or none"),
    ("search: random", "search='random' is not allowed"),
    ("mode: best", "mode='best' is not allowed"),
]


# a config line (under config:) or a sweep-file line
CASES = [(f"  {line}", message) for line, message in CONFIG_CASES] + SWEEP_CASES


@pytest.mark.parametrize("line, message", CASES)
def test_a_bad_value_is_one_line_before_ray(tmp_path, capsys, line, message):
    key = line.strip().split(":")[0]
    if key != "description":  # the case's line in place of BASE's (a key given twice is refused)
        base = "\n".join(x for x in BASE.splitlines() if x.strip().split(":")[0] != key) + "\n"
    code, err = run(tmp_path, capsys, (BASE if key == "description" else base) + line + "\n")
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs" / "bad").exists()  # nothing was started


@pytest.mark.parametrize("space, message", [
    ("{uniform: [0.1]}", "uniform needs [lo, hi], two finite numbers with lo < hi"),
    ("{uniform: [1, 0]}", "uniform needs [lo, hi], two finite numbers with lo < hi"),
    ("{loguniform: [0, 1]}", "with 0 < lo"),
    ("{choice: []}", "choice needs a non-empty list"),
])
def test_optuna_ranges_of_the_wrong_form(tmp_path, capsys, space, message):
    code, err = run(tmp_path, capsys, "description: ranges\nsearch: optuna\nnum_samples: 2\nmetric: recon_mse\n"
                    f"config:\n  dataset: mnist\n  model: vae_mlp\n  lr: {space}\n")
    assert code == 2 and message in err, err


def test_a_huge_grid_is_refused_without_expanding_it(tmp_path, capsys):
    seeds, lrs = list(range(400)), [1e-3 + i * 1e-6 for i in range(400)]
    code, err = run(tmp_path, capsys, BASE + f"  seed: {{grid: {seeds}}}\n  lr: {{grid: {lrs}}}\n")
    assert code == 2 and "the grid holds 160,000 trials, more than 100,000" in err, err


@pytest.mark.parametrize("args, message", [
    (["--set", "epochs=[1,"], "--set 'epochs=[1,': the value is not valid YAML"),
    (["--cpus-per-trial", "-1"], "--cpus-per-trial -1 must be a finite number > 0"),
    (["--max-concurrent", "-3"], "--max-concurrent -3 must be a finite number >= 0"),
    (["--cpus-per-trial", "nan"], "--cpus-per-trial nan must be a finite number > 0"),
    (["--gpus-per-trial", "nan"], "--gpus-per-trial nan must be a finite number >= 0"),
    (["--retry-failed"], "--retry-failed reruns the failed trials of a run: give it with --resume"),
    (["--trust-run"], "--trust-run vouches for a run folder to resume: give it with --resume"),
    (["--only", "model"], "--only takes KEY=VALUE[,VALUE...]"),
    (["--only", "model=gan_dcgan"], "--only model=gan_dcgan: no trial of the sweep has it"),
    (["--set", "seed=18446744073709551616"], "seed=18446744073709551616 is not allowed"),
    (["--stack", "bogus"], "or auto (those that pay), or none"),
    (["--stack", ""], "stack=[]: give a list of keys (e.g. [seed]), auto, or none"),
    (["--only", "foo=1"], "--only foo=1: no trial sets foo; the keys they set: dataset, epochs, model, split"),
    (["--only", "model=vae_mlp", "--only", "epochs=2"], "none of the trials left by --only model=vae_mlp has it"),
    # batch norm needs two items a batch: torch refused one inside the first step, on Ray
    (["--set", "model=gan_mlp", "--set", "batch_size=1"], "batch_size=1: gan_mlp normalises over each batch"),
    (["--set", "model=gan_mlp", "--set", "limit=1"], "limit=1: gan_mlp normalises over each batch"),
    # more CPUs than the local Ray will have: the trial would wait forever (refused before Ray starts)
    (["--cpus-per-trial", "1000"], "cpus_per_trial=1000 exceeds the local Ray's CPUs"),
    (["--cpus-per-trial", "2", "--num-cpus", "1"], "exceeds the local Ray's CPUs (1, --num-cpus 1)"),
])
def test_bad_command_line_values(tmp_path, capsys, args, message):
    code, err = run(tmp_path, capsys, BASE, *args)
    assert code == 2 and message in err, err


@pytest.mark.parametrize("space, message", [
    ("lr: {uniform: [0.001, .inf]}", "uniform needs [lo, hi], two finite numbers with lo < hi"),
    ("lr: {uniform: [0.001, 100]}", "lr: uniform [0.001, 100] reaches 100"),  # lr's upper bound is 10
    ("lr: {choice: [0.001, abc, -5]}", "lr: choice [0.001, 'abc', -5] reaches 'abc'"),  # every choice, not the first
    ("latent_dim: {randint: [2, 2000000]}", "latent_dim: randint [2, 2000000] reaches 1999999"),
])
def test_every_value_an_optuna_space_can_give_is_checked_before_ray(tmp_path, capsys, space, message):
    code, err = run(tmp_path, capsys, BASE + f"  {space}\nsearch: optuna\nnum_samples: 3\n")
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_yaml_nested_too_deeply_or_malformed_is_one_line(tmp_path, capsys):
    code, err = run(tmp_path, capsys, BASE + "  hidden: " + "[" * 3000 + "]" * 3000 + "\n")
    assert code == 2 and "nests lists or mappings too deeply to read" in err and err.count("\n") == 1, err
    code, err = run(tmp_path, capsys, BASE, "--set", "hidden=" + "[" * 3000 + "]" * 3000)
    assert code == 2 and "--set 'hidden=[[[" in err and "too deeply" in err and err.count("\n") == 1, err
    code, err = run(tmp_path, capsys, "config: {model: vae_mlp, epochs: 1\n")  # PyYAML's message: 8 lines
    assert code == 2 and "is not valid YAML: " in err and "(line 2, column 1)" in err and err.count("\n") == 1, err
    code, err = run(tmp_path, capsys, "config: !!python/object/apply:os.system [ls]\n")
    assert code == 2 and "could not determine a constructor" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("args, message", [
    (["--budget", "20000"], "--budget 20000: give a whole number of draws per configuration, a number >= 1 and <= "),
    (["--budget", "0"], "--budget 0: give a whole number of draws per configuration"),
    (["--set", "=3"], "--set takes KEY=VALUE, e.g. --set epochs=3; got '=3'"),
])
def test_budget_and_set_are_checked_against_their_rules(tmp_path, capsys, args, message):
    code, err = run(tmp_path, capsys, BASE + "budget: {trials: 2}\n", *args)
    assert code == 2 and message in err and err.count("\n") == 1, err


@pytest.mark.parametrize("argv, message", [
    (["--resume", "gan_vs_vae_quick"], "the name goes first: python -m raygen.sweep gan_vs_vae_quick --resume"),
    (["--smoke", "--set", "epochs=3"], "no sweep named: python -m raygen.sweep NAME [options]"),
    ([""], "the sweep name is empty"),
    (["no/such/sweep.yaml"], "sweep file no/such/sweep.yaml does not exist"),
    (["gae_cosine", "--cpus-per-trial", "abc"], "argument --cpus-per-trial: invalid float value: 'abc' (see "),
    (["gae_cosine", "--track", "tensorboard"], "argument --track: invalid choice: 'tensorboard'"),
])
def test_a_command_that_names_no_sweep_or_misspells_an_option_is_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) if "argument" in message else contextlib.nullcontext():
        code = main(argv)
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert "argument" in message or code == 2
    assert main([]) == 0 and "gae_cosine" in capsys.readouterr().out  # no arguments at all: the list


def test_valid_yaml_forms_still_read_as_yaml_means_them(tmp_path):
    """A merge key's entries may be overridden (only keys written twice are refused), ranking by a
    metric's validation twin or a time is fine, and stack: none or Auto in a file reads as --stack
    does."""
    from raygen.sweep.plan import make_plan
    from raygen.sweep.spec import load_sweep, safe_yaml

    assert safe_yaml("a: &v {x: 1, y: 2}\nb: {<<: *v, y: 3}\n", "t") == {"a": {"x": 1, "y": 2}, "b": {"x": 1, "y": 3}}
    path = tmp_path / "ok.yaml"
    for extra, stack in (("stack: none\n", None), ("stack: Auto\n", "auto"), ("metric: val_recon_mse\n", None),
                         ("metric: train_time_s\n", None)):
        path.write_text(BASE + "  seed: {grid: [0, 1]}\n" + extra)
        assert make_plan(load_sweep(str(path))).sweep.stack == stack


def test_a_key_that_is_a_list_is_one_line(tmp_path, capsys):
    code, err = run(tmp_path, capsys, "? [a, b]\n: 1\n")
    assert code == 2 and "not valid YAML: found unhashable key" in err and err.count("\n") == 1, err


def test_data_sizes_storage_and_budget_settings_are_checked_before_ray(tmp_path, capsys, monkeypatch):
    cosine = BASE.replace("dataset: mnist", "dataset: cosine").replace("split: test", "split: auto")
    code, err = run(tmp_path, capsys, cosine, "--set", "validation=1000")  # 50 points: a split that cannot be
    assert code == 2 and "validation must be between 1 and 49 for cosine/train, got 1000" in err, err
    sweep = tmp_path / "ok.yaml"
    sweep.write_text(cosine)
    assert main([str(sweep), "--storage", ""]) == 2  # else the run lands in the current folder
    assert "--storage is empty" in capsys.readouterr().err
    code, err = run(tmp_path, capsys, BASE + "budget: {trials: 2}\n", "--set", "validation=500")
    assert code == 2 and "validation=500 is the budget's to set (budget: {validation: 1000}" in err, err


def test_files_that_are_not_sweep_files(tmp_path, capsys):
    binary = tmp_path / "model.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    code, err = run(tmp_path, capsys, None, str(binary))
    assert code == 2 and "cannot be read as text YAML" in err, err
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    code, err = run(tmp_path, capsys, None, str(folder))
    assert code == 2 and "cannot be read as text YAML" in err, err


def test_storage_that_cannot_hold_runs(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    sweep = tmp_path / "ok.yaml"
    sweep.write_text(BASE)
    assert main([str(sweep), "--storage", str(tmp_path / "afile")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main([str(sweep), "--storage", "ftp://host/x"]) == 2
    assert "--storage ftp://host/x" in capsys.readouterr().err
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o500)
    try:
        if subprocess.run(["touch", str(readonly / "t")], capture_output=True).returncode == 0:
            pytest.skip("running as a user that can write into read-only folders (root)")
        assert main([str(sweep), "--storage", str(readonly)]) == 2
        assert "cannot be written" in capsys.readouterr().err
    finally:
        readonly.chmod(0o700)


@pytest.mark.slow  # a fresh Python process (torch's import) or a model trained end to end
def test_a_real_process_gives_one_line_and_exit_2():
    out = subprocess.run([sys.executable, "-m", "raygen.sweep", "gan_vs_vae", "--set", "epochs=0"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "epochs=0 is not allowed" in out.stderr


def test_best_json_is_strict_json_with_native_types():
    import json

    import numpy as np
    import pandas as pd

    from raygen.sweep.collect import best_trial

    df = pd.DataFrame({"trial_id": ["a", "b"], "status": ["completed"] * 2, "recon_mse": [0.2, 0.1],
                       "seed": np.array([0, 1]), "beta": [np.nan, 0.5]})
    df.attrs["config_columns"] = ["seed", "beta"]
    best = best_trial(df, "recon_mse", "min")
    text = json.dumps(best, allow_nan=False)
    assert json.loads(text) == {"metric": "recon_mse", "mode": "min", "trial_id": "b", "recon_mse": 0.1, "seed": 1,
                                "beta": 0.5}
    assert best_trial(df.assign(beta=[0.5, np.nan]), "recon_mse", "min")["beta"] is None


@pytest.mark.parametrize("address, message", [
    ("127.0.0.1:1", "nothing answers at 127.0.0.1:1"),
    ("ray://127.0.0.1:1", "nothing answers at 127.0.0.1:1"),
    pytest.param("10.255.255.1:6379", "--address 10.255.255.1:6379: ", marks=pytest.mark.slow),  # a timeout
    ("auto", "no Ray cluster is running on this machine"),
    ("nonsense", "give auto, HOST:PORT or ray://HOST:10001"),
    ("http://127.0.0.1:8265", "http:// is no Ray address"),
    ("127.0.0.1:99999", "port 99999 is out of range (1-65535)"),
    ("no-such-host.invalid:6379", "the host 'no-such-host.invalid' cannot be looked up here ("),
])
def test_an_unreachable_cluster_fails_within_seconds(tmp_path, capsys, monkeypatch, address, message):
    import time

    import raygen.sweep.preflight

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(raygen.sweep.preflight.tempfile, "gettempdir", lambda: str(tmp_path))  # no local cluster file
    t0 = time.monotonic()
    code, err = run(tmp_path, capsys, BASE, "--address", address)
    assert code == 2 and message in err, err
    assert time.monotonic() - t0 < 30


@pytest.mark.parametrize("server", ["http", "silent"])
def test_an_address_that_answers_but_not_as_ray_fails_within_seconds(tmp_path, capsys, server):
    import http.server
    import socket
    import threading
    import time

    if server == "http":  # a web server (the dashboard's port, a notebook)
        quiet = type("Quiet", (http.server.BaseHTTPRequestHandler,), {"log_message": lambda *a: None})
        srv = http.server.HTTPServer(("127.0.0.1", 0), quiet)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        port = srv.server_address[1]
    else:  # accepts and never says a word
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
    t0 = time.monotonic()
    try:
        code, err = run(tmp_path, capsys, BASE, "--address", f"127.0.0.1:{port}")
    finally:
        srv.shutdown() if server == "http" else srv.close()
    assert code == 2 and f"127.0.0.1:{port} answers, but not as Ray" in err and err.count("\n") == 1, err
    assert time.monotonic() - t0 < 30


def test_absent_or_damaged_data_is_one_line_before_ray(tmp_path, capsys, data_root):
    code, err = run(tmp_path, capsys, BASE.replace("dataset: mnist", "dataset: omniglot"),
                    "--data-root", str(tmp_path / "empty"))
    assert code == 2 and "dataset 'omniglot': files not found" in err and "--skip-missing-data" in err, err
    assert err.count("\n") == 1
    damaged = tmp_path / "data" / "MNIST" / "raw"
    damaged.mkdir(parents=True)
    good = data_root / "MNIST" / "raw"
    (damaged / "t10k-images-idx3-ubyte.gz").write_bytes((good / "t10k-images-idx3-ubyte.gz").read_bytes()[:5000])
    (damaged / "t10k-labels-idx1-ubyte.gz").write_bytes((good / "t10k-labels-idx1-ubyte.gz").read_bytes())
    code, err = run(tmp_path, capsys, BASE, "--data-root", str(tmp_path / "data"))
    assert code == 2 and "t10k-images-idx3-ubyte.gz is damaged" in err and "Fix: delete it" in err, err


def test_run_folders_are_created_atomically_and_never_shared(tmp_path):
    from raygen.core.storage import new_run_dir

    names = [new_run_dir(str(tmp_path), "20260101-000000") for _ in range(3)]
    assert names == ["20260101-000000", "20260101-000000-2", "20260101-000000-3"]
    assert all((tmp_path / n).is_dir() for n in names)


def test_metric_columns_are_float64_even_when_nothing_measured_them():
    import pandas as pd

    from raygen.sweep.collect import typed

    df = typed(pd.DataFrame({"trial_id": ["a", "b"], "fid": [None, None], "recon_mse": [0.1, None]}))
    assert df["fid"].dtype == "float64" and df["recon_mse"].dtype == "float64"
    assert df["cls_fid"].dtype == "float64" and df["cls_fid"].isna().all()  # declared, absent: still a column


def test_the_best_configuration_is_chosen_by_its_mean_over_seeds_as_the_report_does():
    import pandas as pd

    from raygen.sweep.callbacks.console import best_words
    from raygen.sweep.collect import best_trial

    # latent 2 has the single luckiest seed (0.05) but the worse mean; latent 10 is better on average
    df = pd.DataFrame({"trial_id": list("abcd"), "status": ["completed"] * 4, "recon_mse": [0.05, 0.30, 0.10, 0.11],
                       "latent_dim": [2, 2, 10, 10], "seed": [0, 1, 0, 1]})
    df.attrs["config_columns"] = ["latent_dim", "seed"]
    best = best_trial(df, "recon_mse", "min")
    assert best["latent_dim"] == 10 and best["trial_id"] == "c" and best["over_seeds"]["seeds"] == 2
    assert best["over_seeds"]["mean"] == pytest.approx(0.105)
    words = best_words(best, ["model", "latent_dim", "seed"])
    assert words.startswith("best (min recon_mse, mean over 2 seeds): latent_dim=10: recon_mse 0.105 ± ")
    assert "its best seed 0: 0.1 (trial c)" in words


def test_the_best_configuration_with_settings_some_models_lack():
    import pandas as pd

    from raygen.sweep.collect import best_trial

    # the GANs have no latent size of their own (missing), the VAEs two; a smoke sweep's one seed each
    df = pd.DataFrame({"trial_id": list("abc"), "status": ["completed"] * 3, "cls_fid": [5.0, 4.0, 1.0],
                       "model": ["gan", "vae", "vae"], "latent_dim": pd.array([pd.NA, 2, 8], dtype="Int64"),
                       "seed": [0, 1, 2]})
    df.attrs["config_columns"] = ["model", "latent_dim", "seed"]
    best = best_trial(df, "cls_fid", "min")
    assert best["trial_id"] == "c" and best["latent_dim"] == 8 and "over_seeds" not in best
    two = pd.concat([df, df.assign(trial_id=list("def"), seed=[3, 4, 5], cls_fid=[5.0, 4.5, 9.0])])
    two.attrs = df.attrs
    assert best_trial(two, "cls_fid", "min")["over_seeds"] == {"mean": 4.25, "std": 0.3535533905932738, "seeds": 2}
