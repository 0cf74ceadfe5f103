"""The run record's contract: every key a trial reports is declared (``record.keys``, a
metric family's or a model's ``Column``, a model's ``reports``), and every key a model
declares it does report. Each registered model trains a plain ``Trial`` and, where it
stacks, a ``StackedTrial`` of two seeds, for an epoch of 2 batches with a small evaluation (100 samples)."""
from __future__ import annotations

import pytest

from raygen.core.errors import RaygenError
from raygen.core.registry import MODELS
from raygen.engine.stacking import StackedTrial, stackable
from raygen.engine.trial import Trial
from raygen.metrics.evaluate import FAMILIES, declared_kinds, evaluate
from raygen.record import keys
from raygen.record.columns import Column
from raygen.record.transport import TRANSPORT_KEYS

# Settings that make a model report every key it declares (its conditional hooks).
EXERCISE = {"vamp_vae": {"warmup_epochs": 2}, "vade": {"pretrain_epochs": 1}}


def config(name: str, **extra) -> dict:
    tiny = {k: list(v) if isinstance(v, tuple) else v for k, v in getattr(MODELS.get(name), "TINY", {}).items()}
    return {"model": name, "dataset": "mnist", "split": "test", "holdout": 200, "limit": 400, "epochs": 1,
            "batch_size": 16, "max_batches": 2, "eval_samples": 100, "inception_cpu_samples": 0,
            **tiny, **EXERCISE.get(name, {}), **extra}


def reported(results: list[dict], history: list[dict]) -> set[str]:
    return {k for r in [*results, *history] for k in r}


def check(name: str, seen: set[str], config_keys: set[str]) -> None:
    declared = declared_kinds()
    undeclared = sorted(k for k in seen if keys.kind_of(k, declared, config_keys) is None)
    assert not undeclared, f"{name} reports undeclared key(s) {undeclared}: declare them in record/keys.py, " \
                           f"a metric family's columns or the model's reports"
    cls = MODELS.get(name)
    own = {*cls.reports, *(c.name for c in cls.metric_columns)}
    missing = sorted(own - seen)
    assert not missing, f"{name} declares {missing} but never reports them"
    assert not seen & TRANSPORT_KEYS, "the engine reports no transport keys (the sweep's trainable adds them)"


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS.names())
def test_a_trial_reports_exactly_its_declared_keys(name, data_root, tmp_path):
    trial = Trial(config(name), data_root=str(data_root), out_dir=tmp_path)
    last = trial.fit()
    assert last[keys.STATUS] == keys.COMPLETED, last.get(keys.ERROR)
    check(name, reported([last], trial.history), set(trial.config))


STACKABLE = [n for n in MODELS.names() if stackable([config(n, seed=0), config(n, seed=1)]) is None]


@pytest.mark.slow
@pytest.mark.parametrize("name", STACKABLE)
def test_a_stacked_trial_reports_exactly_its_declared_keys(name, data_root, tmp_path):
    st = StackedTrial([config(name, seed=s) for s in (0, 1)], data_root=str(data_root),
                      out_dirs=[tmp_path / "m0", tmp_path / "m1"])
    last = st.fit()
    assert all(r[keys.STATUS] == keys.COMPLETED for r in last)
    check(name, reported(last, [e for m in st.members for e in m.history]), set(st.members[0].config))


def test_every_registered_model_is_in_the_contract():
    assert {"vae_conv", "gae", "savae", "gan_dcgan"} <= set(MODELS.names())
    assert "gae" in STACKABLE and "savae" not in STACKABLE


def test_no_key_is_declared_with_two_kinds():
    seen: dict[str, set[str]] = {}
    for _, cls in MODELS.items():
        for k, kind in [*cls.reports.items(), *((c.name, c.kind) for c in cls.metric_columns)]:
            seen.setdefault(k, set()).add(kind)
    for _, fam in FAMILIES.items():
        for c in fam.columns:
            seen.setdefault(c.name, set()).add(c.kind)
    assert {k: v for k, v in seen.items() if len(v) > 1} == {}
    assert all(kind in keys.KINDS for v in seen.values() for kind in v)
    clash = {k for k in seen if k in keys.FIXED and {keys.FIXED[k]} != seen[k]}
    assert clash == set()


def test_a_family_that_returns_an_undeclared_key_fails_the_evaluation(monkeypatch):
    from raygen.metrics import evaluate as ev_mod
    from raygen.metrics.evaluate import Eval, Family

    def rogue(model, data, ev):
        return {"recon_mse": 0.1, "surprise": 1.0}

    fake = {"rogue": Family(rogue, (Column("recon_mse", "recon. MSE"),))}
    monkeypatch.setattr(ev_mod.FAMILIES, "items", lambda: list(fake.items()))

    class Data:
        eval_split, train_split = "test", "test"

    class Model:  # the harness only switches it to eval and back
        def eval(self):
            pass

        def train(self):
            pass

    model = Model()
    with pytest.raises(RaygenError, match="undeclared key.*surprise"):
        evaluate(model, Data(), Eval(n=1))


def test_kinds_of_the_fixed_and_declared_keys():
    declared = declared_kinds()
    assert keys.kind_of(keys.TRAIN_TIME_S, declared) == keys.Kind.TIME
    assert keys.kind_of("delta_epoch", declared) == keys.Kind.COUNT  # GAE's, declared on the model
    assert keys.kind_of("cls_fid", declared) == keys.Kind.METRIC
    assert keys.kind_of("fid_samples", declared) == keys.Kind.COUNT
    assert keys.kind_of("params_encoder", declared) == keys.Kind.COUNT
    assert keys.kind_of("samples_png", declared) == keys.Kind.IMAGE
    assert keys.kind_of("latent_dim", declared, {"latent_dim"}) == keys.Kind.CONFIG
    assert keys.kind_of("eval_classifier_s", declared) == keys.Kind.TIME
    assert keys.kind_of("no_such_key", declared) is None


def test_the_report_takes_configuration_from_the_recorded_kinds_and_old_runs_still_read():
    import pandas as pd

    from raygen.report.analysis import analyze
    from raygen.sweep.collect import run_metadata

    df = pd.DataFrame({"trial_id": ["a", "b"], "status": ["completed"] * 2, "model": ["gae"] * 2,
                       "warmup_s": [1.0, 2.0], "delta_reached": [True, False], "train_time_s": [3.0, 4.0]})
    # a setting whose name looks like a cost; a model's bookkeeping the report has no code for
    df.attrs["kinds"] = {"model": keys.Kind.CONFIG, "warmup_s": keys.Kind.CONFIG,
                         "delta_reached": keys.Kind.BOOKKEEPING}
    assert analyze(df).config == ["model", "warmup_s"]
    old = df.copy()
    old.attrs = {}  # a run written before kinds and configuration columns were recorded
    assert analyze(old).config == ["model", "delta_reached"]  # as before kinds: a guess by name
    run = df.assign(seed=[0, 1])
    run.attrs = {"config_columns": ["model", "seed"]}
    meta = run_metadata(run)
    assert meta["kinds"]["seed"] == keys.Kind.CONFIG and meta["kinds"]["delta_reached"] == keys.Kind.BOOKKEEPING
    assert meta["kinds"][keys.TRAIN_TIME_S] == keys.Kind.TIME


def test_no_setting_shares_its_name_with_a_result_column():
    """A row's configuration columns and its result columns share one namespace (rows.trial_row
    keeps the setting and drops the result): a setting named like a metric would erase it."""
    from dataclasses import fields

    from raygen.engine.config import TrainConfig

    settings = {f.name for f in fields(TrainConfig)} | {f.name for _, cls in MODELS.items() for f in fields(cls.Config)}
    columns = set(keys.FIXED) | set(declared_kinds())
    both = sorted(settings & columns - {keys.EVAL_SPLIT, keys.EVAL_SAMPLES})  # the setting itself, reported back
    assert both == [], f"settings named like result columns: {both}"
