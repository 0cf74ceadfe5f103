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
