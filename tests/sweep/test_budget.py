"""Equal-budget comparison: the draws a budget sweep makes, and the best-so-far analysis
(Lucic et al. 2018) checked against a direct computation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from raygen.core.errors import RaygenError
from raygen.core.registry import MODELS
from raygen.engine.config import split_config
from raygen.report import budget
from raygen.sweep.plan import make_plan
from raygen.sweep.spec import Budget, Sweep


@pytest.mark.parametrize("lower", [True, False])
def test_the_bootstrap_matches_the_expectation_over_every_subset(lower):
    rng = np.random.default_rng(3)
    valid, held = rng.normal(size=7), rng.normal(size=7)
    curve = budget.best_so_far(valid, held, lower, rounds=20_000, seed=1)
    for k in range(1, 8):
        assert curve.mean[k - 1] == pytest.approx(budget.exact_expectation(valid, held, k, lower), abs=0.02)
        assert curve.low[k - 1] - 1e-12 <= curve.mean[k - 1] <= curve.high[k - 1] + 1e-12
    # all N trials: the best on validation, always
    best = held[np.argmin(valid) if lower else np.argmax(valid)]
    assert curve.mean[-1] == pytest.approx(best) and curve.low[-1] == curve.high[-1] == pytest.approx(best)


def test_a_trial_without_a_validation_score_is_never_chosen_over_one_with():
    valid, held = [np.nan, 0.5, 0.9], [0.0, 5.0, 9.0]
    assert budget.exact_expectation(valid, held, 3) == 5.0
    assert budget.exact_expectation(valid, held, 2) == pytest.approx((5.0 + 9.0 + 5.0) / 3)


def test_rankings_and_separability_follow_the_bands():
    df = pd.DataFrame({"model": ["a"] * 4 + ["b"] * 4, "val": [1.0, 2, 3, 4, 10, 11, 12, 13],
                       "fid": [1.0, 2, 3, 4, 10, 11, 12, 13]})
    c = budget.curves(df, ["model"], "fid", "val", lower=True)
    assert [g for g, _ in budget.ranking(c, 4)] == [("a",), ("b",)]
    assert budget.ranking(c, 3)[0][1] is True  # far apart: separable
    assert budget.ranking(c, 4)[0][1] is False  # all 4 trials: one score each, no evidence either way
    assert budget.separable_from(c, ("a",), ("b",)) == 1


def test_a_budget_sweep_draws_each_models_own_space_the_same_way_every_time():
    sweep = Sweep(name="b", config={"dataset": "mnist", "epochs": 1, "beta": 4.0,
                                    "model": {"grid": ["vae", "beta_vae", "wae"]}}, budget=Budget(trials=5, seed=7))
    plan = make_plan(sweep)
    assert len(plan.configs) == 15
    by_model = {m: [c for c in plan.configs if c["model"] == m] for m in ("vae", "beta_vae", "wae")}
    assert all(c["beta"] == 4.0 for c in by_model["beta_vae"])  # set in the file: not tuned
    assert len({c["wae_lambda"] for c in by_model["wae"]}) == 5 and all(1 <= c["wae_lambda"] <= 100
                                                                          for c in by_model["wae"])
    assert all(c["validation"] == 1000 for c in plan.configs)  # chosen on a validation carve
    assert make_plan(sweep).configs == plan.configs  # reproducible
    fewer = Sweep(name="b", config={**sweep.config, "model": {"grid": ["wae"]}}, budget=Budget(trials=5, seed=7))
    assert make_plan(fewer).configs == by_model["wae"]  # a model's draws do not depend on the others


def test_every_models_search_space_names_its_own_settings():
    for name, cls in MODELS.items():
        for key, spec in cls.search_space.items():
            split_config({"model": name, key: _any(spec)})  # a RaygenError names a key the model lacks


def test_a_budget_needs_a_plain_grid():
    sweep = Sweep(name="b", config={"model": "vae", "seed": {"grid": [0, 1]}}, stack=["seed"], budget=Budget())
    with pytest.raises(RaygenError, match="budget"):
        make_plan(sweep)


def _any(spec: dict):
    (kind, arg), = spec.items()
    return arg[0]


def test_only_runs_a_part_of_a_sweep_with_the_draws_of_the_whole():
    sweep = Sweep(name="b", config={"dataset": "mnist", "epochs": 1, "model": {"grid": ["vae", "wae", "beta_vae"]}},
                  budget=Budget(trials=3, seed=2))
    whole = make_plan(sweep).configs
    part = make_plan(sweep, only={"model": ["wae", "beta_vae"]}).configs
    assert part == [c for c in whole if c["model"] in ("wae", "beta_vae")]
    with pytest.raises(RaygenError, match="--only model=gan: no trial of the sweep has it"):
        make_plan(sweep, only={"model": ["gan"]})


def test_a_smaller_budget_is_a_prefix_of_a_larger_one():
    """--budget N: the first N draws of each configuration, so a quick look and the full budget agree."""
    sweep = Sweep(name="b", config={"dataset": "mnist", "epochs": 1, "model": {"grid": ["vae", "wae"]}},
                  budget=Budget(trials=6, seed=4))
    full, few = make_plan(sweep).configs, make_plan(sweep, budget=2).configs
    assert len(few) == 4 and few == [c for m in ("vae", "wae") for c in [c for c in full if c["model"] == m][:2]]
    with pytest.raises(RaygenError, match="--budget 0"):
        make_plan(sweep, budget=0)
    with pytest.raises(RaygenError, match="no budget: block"):
        make_plan(Sweep(name="b", config={"model": "vae"}), budget=2)
