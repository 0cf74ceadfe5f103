"""Rows from Ray's results: one per trial, under its own id and configuration."""
from __future__ import annotations


def test_a_trial_carrying_another_trials_result_gets_a_row_of_its_own(tmp_path):
    # A reused actor's checkpoint, saved (Ctrl-C) before its new trial's first step, carried the
    # previous trial's last result: two rows of the previous trial, none of the new one.
    from types import SimpleNamespace

    import pandas as pd

    from raygen.sweep.collect import rows_from_grid

    def result(path, metrics, config):
        return SimpleNamespace(path=str(tmp_path / path), metrics=metrics, config=config, error=None,
                               metrics_dataframe=pd.DataFrame(), filesystem=None)

    first = {"model": "vae_mlp", "seed": 0, "epochs": 1}
    second = {"model": "vae_mlp", "seed": 1, "epochs": 1}
    done = {"trial_id": "a_00000", "training_iteration": 1, "epoch": 1, "loss": 1.0, "status": "completed",
            "done": True, "config": first}
    grid = [result("t0", done, first), result("t1", dict(done), first)]
    trials = [SimpleNamespace(path=str(tmp_path / "t0"), trial_id="a_00000", config=first),
              SimpleNamespace(path=str(tmp_path / "t1"), trial_id="a_00001", config=second)]
    grid = type("Grid", (list,), {})(grid)
    grid._experiment_analysis = SimpleNamespace(trials=trials)
    df, _ = rows_from_grid(grid, "s", "r", str(tmp_path), interrupted=True)
    assert df.set_index("trial_id").status.to_dict() == {"a_00000": "completed", "a_00001": "interrupted"}
    assert df.set_index("trial_id").seed.to_dict() == {"a_00000": 0, "a_00001": 1}


def test_a_workers_first_trial_counts_its_start_up_from_the_process_start(tmp_path, monkeypatch, data_root):
    """The first trial in a worker process pays the process's start and its imports before its
    ``setup``: its start-up is the process's age; a trial on the reused actor counts its own."""
    import time

    from raygen.record import keys
    from raygen.sweep import trainable

    age = trainable.since_process_start()
    assert age is not None and 0 < age < time.monotonic()  # this process's age: older than 0, younger than boot
    monkeypatch.setattr(trainable, "_STARTED", 0)
    monkeypatch.setattr(trainable, "since_process_start", lambda: 42.0)

    class Bare(trainable.GenerativeTrainable):  # no Ray: the attributes Ray Tune would give it
        trial_resources, logdir, trial_id = None, str(tmp_path), "t0"

    t = Bare.__new__(Bare)
    t._data_root, t._sweep_dir = str(data_root), None
    config = {"model": "vae_mlp", "dataset": "cosine", "epochs": 1, "hidden": [8], "latent_dim": 1, "output": "linear",
              "recon": "mse"}
    t._start(config)
    assert t.error is None and t.startup == {keys.STARTUP_S: 42.0, keys.FIRST_ON_WORKER: True}
    t._start(config)  # the actor reused for another trial (reset_config)
    assert t.startup[keys.FIRST_ON_WORKER] is False and t.startup[keys.STARTUP_S] < 42.0
