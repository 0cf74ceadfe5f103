"""Sweep files: parsing, validation with clear messages (the file alone, then the plan), grid expansion."""
from __future__ import annotations

import pytest

from raygen.core.errors import RaygenError
from raygen.sweep.plan import make_plan
from raygen.sweep.spec import available, load_sweep


def write(tmp_path, text: str, name: str = "s"):
    p = tmp_path / f"{name}.yaml"
    p.write_text(text)
    return str(p)


def test_every_shipped_sweep_is_valid():
    names = list(available())
    assert "gan_vs_vae" in names
    for name in names:
        sweep = load_sweep(name)
        assert sweep.description, f"{name} needs a description for --list"
        make_plan(sweep, smoke=True)
        make_plan(sweep, smoke=False)


def test_gan_vs_vae_grid_is_the_issue_grid():
    configs = load_sweep("gan_vs_vae").grid()
    # 2 GANs x 3 seeds + 2 VAEs x 3 latent sizes x 3 seeds
    assert len(configs) == 24
    vaes = {(c["model"], c["latent_dim"]) for c in configs if c["model"].startswith("vae")}
    assert vaes == {(m, d) for m in ("vae_conv", "vae_mlp") for d in (2, 10, 32)}
    assert {c["seed"] for c in configs} == {0, 1, 2}


def test_smoke_and_overrides_apply_to_every_trial():
    configs = load_sweep("gan_vs_vae").grid(smoke=True, overrides={"batch_size": 32})
    assert all(c["epochs"] == 1 and c["max_batches"] > 0 and c["batch_size"] == 32 for c in configs)


def test_unknown_sweep_lists_the_choices():
    with pytest.raises(RaygenError, match="unknown sweep 'gan_vs_vea'.*Did you mean 'gan_vs_vae'.*Available sweeps"):
        load_sweep("gan_vs_vea")


@pytest.mark.parametrize("text, message", [
    ("config: [1, 2", "not valid YAML"),
    ("- a\n- b\n", "must be a mapping"),
    ("configs: {}\n", "unknown key\\(s\\) configs.*Did you mean 'config'"),
    ("config: {model: vea}\n", "unknown model 'vea'.*Valid models: .*vae_conv"),
    ("config: {model: vae_mlp, latnt_dim: 3}\n", "unknown config key\\(s\\) latnt_dim.*latent_dim"),
    ("config: {model: vae_mlp, latent_dim: two}\n", "latent_dim='two' is not a valid int"),
    ("config: {dataset: imagenet}\n", "unknown dataset 'imagenet'"),
    ("search: optuna\nconfig: {lr: {grid: [0.1, 0.2]}}\n", "Optuna cannot take grid_search"),
    ("config: {lr: {uniform: [0.1, 0.2]}}\n", "needs search: optuna"),
    ("config: {lr: {between: [0.1, 0.2]}}\n", "not a value form raygen knows"),
    ("resources: {gpus: 1}\n", "unknown resources key"),
    ("scheduler: {asha: {mode: best}}\n", "mode='best' must be min or max"),
    ("scheduler: {asha: {grace_period: 10, max_t: 5}}\n", "grace_period=10 exceeds max_t=5"),
    ("scheduler: {asha: {reduction_factor: 1}}\n", "reduction_factor=1 must be a number > 1"),
    ("scheduler: {asha: {brackets: 1.5}}\n", "brackets=1.5 must be a whole number"),
    ("track: mlflow\n", "track: takes a mapping"),
    ("track: {mlflow: {tags: vision}}\n", "tags takes a mapping"),
])
def test_bad_sweep_files_get_clear_errors(tmp_path, text, message):
    from raygen.sweep.callbacks import trackers

    with pytest.raises(RaygenError, match=message):
        sweep = load_sweep(write(tmp_path, text))
        make_plan(sweep)
        trackers.check(trackers.merged(sweep.track, []), "s")


def test_yaml_scientific_notation_is_coerced():
    from raygen.engine.config import split_config

    _, _, cfg = split_config({"model": "vae_mlp", "lr": "1e-3", "hidden": [64, 32]})
    assert cfg.lr == 0.001 and cfg.hidden == (64, 32)


@pytest.mark.parametrize("written, key, value", [
    ("lr: {grid: [1e-3, 3e-4]}", "lr", [0.001, 0.0003]),  # YAML 1.1 reads these as text
    ("lr: {grid: ['1e-3']}", "lr", [0.001]),  # quoted: the declared type still wins
    ("beta: .5", "beta", [0.5]),
    ("batch_size: 1_000", "batch_size", [1000]),
    ("latent_dim: +2", "latent_dim", [2]),
    ("epochs: 3.0", "epochs", [3]),
    ("lr: 1E-2", "lr", [0.01]),
])
def test_every_setting_is_planned_with_its_declared_type(tmp_path, written, key, value):
    sweep = load_sweep(write(tmp_path, f"config: {{model: vae_mlp, dataset: mnist}}\nvariants:\n  - {{{written}}}\n"))
    got = [c[key] for c in make_plan(sweep).configs]
    assert got == value and all(type(g) is type(v) for g, v in zip(got, value))
    assert [c[key] for g in make_plan(sweep).stacks for c in g] == value  # what Ray is given


def test_set_and_only_read_values_as_the_sweep_file_does():
    from raygen.sweep.preflight import only, overrides

    assert overrides(["lr=1e-3", "hidden=[64, 64]"]) == {"lr": 0.001, "hidden": [64, 64]}
    assert only(["lr=1e-3,3e-4"]) == {"lr": [0.001, 0.0003]}


def test_a_key_with_a_leading_underscore_is_an_unknown_key(tmp_path):
    with pytest.raises(RaygenError, match="unknown config key.*_epochs.*Did you mean 'epochs'"):
        make_plan(load_sweep(write(tmp_path, "config: {model: vae_mlp, _epochs: 3}\n")))


BOMB = """description: a billion laughs
config: {model: vae_mlp}
paper: &a9 {cite: x}
lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]
lol1: &l1 [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]
lol2: &l2 [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]
lol3: &l3 [*l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2]
lol4: &l4 [*l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3]
lol5: &l5 [*l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4]
"""


def test_a_yaml_alias_bomb_is_refused_before_anything_is_built(tmp_path):
    with pytest.raises(RaygenError, match="aliases expand to more than 100,000 values"):
        load_sweep(write(tmp_path, BOMB))


def test_a_continuous_range_over_a_whole_number_setting_is_refused(tmp_path):
    text = "search: optuna\nnum_samples: 2\nconfig: {model: vae_mlp, latent_dim: {uniform: [2, 8]}}\n"
    with pytest.raises(RaygenError, match="latent_dim is a whole number, but uniform draws fractions"):
        make_plan(load_sweep(write(tmp_path, text)))
    make_plan(load_sweep(write(tmp_path, text.replace("uniform", "randint"))))  # the right form passes


def test_a_model_that_cannot_be_built_with_its_settings_is_one_line_before_the_start(tmp_path, monkeypatch):
    """A model's own constructor failing (not a RaygenError) on the planner's dry build."""
    from raygen.core.registry import MODELS
    from raygen.models.vae import MLPVAE

    class Broken(MLPVAE):
        def __init__(self, cfg, shape, num_classes=10):
            raise ValueError("hidden sizes do not fit")

    monkeypatch.setitem(MODELS._items, "broken_vae", Broken)
    with pytest.raises(RaygenError, match=r"model 'broken_vae' cannot be built.*ValueError: hidden sizes do not fit"):
        make_plan(load_sweep(write(tmp_path, "config: {model: broken_vae, dataset: mnist}\n")))
