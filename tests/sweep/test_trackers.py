"""Trackers: a sweep's ``track:`` block (or --track) logs every trial to MLflow for real (a
local file store: no server, no network); mistakes are one line before Ray starts."""
from __future__ import annotations

import importlib.util
import os

import pytest

from raygen.core.errors import RaygenError
from raygen.sweep.callbacks.trackers import check, merged
from raygen.sweep.cli import main

from conftest import REPO
from sweep_helpers import only_run, results, run_sweep, write_sweep

SWEEP = """
description: tracked
config:
  model: vae_mlp
  dataset: mnist
  split: test
  epochs: 2
  max_batches: 3
  eval_samples: 100
  seed: {grid: [0, 1]}
"""


def test_track_names_merge_with_the_sweep_files_block():
    assert merged({"mlflow": {"experiment": "x"}}, ["mlflow", "wandb"]) == {"mlflow": {"experiment": "x"},
                                                                         "wandb": {}}


@pytest.mark.parametrize("track, message", [
    ({"neptune": {}}, "'neptune' is not a tracker raygen knows; use one of mlflow, wandb"),
    ({"mlflow": {"experimnt": "x"}}, "track: mlflow: unknown key(s) experimnt; valid: tracking_uri, experiment"),
    ({"mlflow": "yes"}, "track: mlflow takes a mapping of settings"),
    # tracking URIs MLflow could not use: known before the start, not said mid-run as the sweep goes on untracked
    ({"mlflow": {"tracking_uri": 12}}, "track: mlflow: tracking_uri takes text, got 12"),
    ({"mlflow": {"tracking_uri": "bogus-scheme://x"}}, "MLflow has no tracking store for bogus-scheme://"),
    ({"mlflow": {"tracking_uri": "file:/proc/nope/mlruns"}}, "/proc/nope/mlruns cannot be written here"),
    ({"mlflow": {"tracking_uri": "sqlite:////proc/nope/x.db"}}, "/proc/nope cannot be written here"),
])
def test_a_bad_track_block_is_one_line(track, message):
    with pytest.raises(RaygenError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check(track, "sweep 'x'")


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_a_tracker_without_its_package_says_which_extra_to_install(tmp_path, capsys):
    path = write_sweep(tmp_path, "w", SWEEP + "track: {wandb: {project: raygen, mode: offline}}\n")
    assert main([str(path), "--storage", str(tmp_path / "runs"), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "track: wandb needs the wandb package, an optional extra: `uv sync --extra wandb`" in err
    assert err.count("\n") == 1 and not (tmp_path / "runs").exists()


def test_an_mlflow_server_that_cannot_be_reached_is_one_line_before_the_start(tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = write_sweep(tmp_path, "m", SWEEP + f"track: {{mlflow: {{tracking_uri: 'http://127.0.0.1:{port}'}}}}\n")
    assert main([str(path), "--storage", str(tmp_path / "runs"), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert f"the tracking server http://127.0.0.1:{port} cannot be reached" in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_a_tracker_failing_mid_run_is_said_once_and_the_sweep_goes_on(capsys, monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")  # as raygen sets them (restored after)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    from raygen.sweep.callbacks.mlflow_runs import MLflowRuns

    cb = MLflowRuns("http://127.0.0.1:9", "x", {}, ["model"])
    trial = SimpleNamespace(trial_id="t1", config={"model": "vae"}, local_path="")
    for _ in range(3):
        cb.log_trial_start(trial)
        cb.log_trial_result(1, trial, {"epoch": 1, "loss": 1.0})
    cb.log_trial_end(trial)
    err = capsys.readouterr().err
    assert err.count("mlflow stopped tracking") == 1 and "the sweep and its results go on" in err


@pytest.mark.slow
def test_mlflow_logs_every_trial_and_stack_member_to_a_local_file_store(tmp_path, data_root, monkeypatch):
    from mlflow.tracking import MlflowClient

    store = (tmp_path / "mlruns").as_uri()
    sweep = write_sweep(tmp_path, "tracked", SWEEP.replace("[0, 1]", "[0, 1, 2]")
                        + "  lr: {grid: [0.001, 0.0003]}\nstack: [seed]\n"
                        + "track: {mlflow: {experiment: raygen-test}}\n")
    out = run_sweep(sweep, tmp_path / "runs", data_root, "--num-cpus", "2", "--set", "report_every=1",
                    env={**os.environ, "MLFLOW_TRACKING_URI": store})
    assert "stack: 6 trials as 2 Ray trials" in out.stdout
    df = results(only_run(tmp_path / "runs", "tracked"))
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # what raygen set in the sweep's process
    client = MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name("raygen-test")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 6 == len(df)  # one MLflow run per trial, each member of a stack its own
    names = sorted(r.info.run_name for r in runs)
    assert names == sorted(f"vae_mlp  seed={s}  lr={lr}" for s in (0, 1, 2) for lr in ("0.001", "0.0003")), names
    for r in runs:
        assert r.data.params["model"] == "vae_mlp" and r.info.status == "FINISHED"
        assert "loss" in r.data.metrics and "recon_mse" in r.data.metrics
        assert [m.step for m in client.get_metric_history(r.info.run_id, "loss")] == [1, 2]  # a point per epoch
        row = df[(df.seed == int(r.data.params["seed"])) & (df.lr == float(r.data.params["lr"]))]
        assert r.data.metrics["recon_mse"] == pytest.approx(row.recon_mse.item())  # the member's own number


def test_tensorboard_gets_the_trials_image_grids(tmp_path, data_root):
    import struct

    from tensorboardX.proto import event_pb2

    import raygen

    raygen.train({"model": "vae_mlp", "dataset": "mnist", "split": "test", "epochs": 1, "max_batches": 2,
                  "eval_samples": 64}, data_root=str(data_root), out_dir=str(tmp_path))
    (events,) = tmp_path.glob("events.out.tfevents.*")
    data, i, images = events.read_bytes(), 0, {}
    while i < len(data):  # TFRecord: length, its crc, the event, its crc
        (n,) = struct.unpack("Q", data[i:i + 8])
        event = event_pb2.Event()
        event.ParseFromString(data[i + 12:i + 12 + n])
        i += 16 + n
        images.update({v.tag: (event.step, v.image.height) for v in event.summary.value if v.HasField("image")})
    assert images == {"samples": (1, 242), "reconstructions": (1, 242)}  # 8 x 8 grids of 28-pixel images


def test_every_trackers_extra_exists_in_the_project():
    """What ``uv sync --extra <name>`` is told to install is declared (with the tracker's package)."""
    import tomllib

    from raygen.sweep.callbacks.trackers import TRACKERS

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for t in TRACKERS.values():
        assert t.extra in extras and any(d.startswith(t.package) for d in extras[t.extra]), t.extra
