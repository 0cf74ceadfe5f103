"""The trainable's Ray-free core: real training on MNIST, divergence (resume: the contract suite)."""
from __future__ import annotations

import pytest

from raygen.engine.trial import Trial

BASE = {"dataset": "mnist", "split": "test", "batch_size": 64, "max_batches": 20, "eval_samples": 500}


@pytest.mark.slow  # a fresh Python process (torch's import) or a model trained end to end
def test_training_improves_reconstruction_on_real_mnist(data_root, tmp_path):
    t = Trial({**BASE, "model": "vae_mlp", "epochs": 3, "max_batches": 0}, data_root=str(data_root), out_dir=tmp_path)
    untrained = t.evaluate(images=False)["recon_mse"]
    for _ in range(3):
        result = t.train_epoch()
    assert result["status"] == "completed" and result["done"]
    assert result["recon_mse"] < 0.8 * untrained, (untrained, result["recon_mse"])
    assert (tmp_path / "samples.png").exists() and (tmp_path / "reconstructions.png").exists()
    assert result["train_split"] == "test[minus holdout 1000]" and result["eval_split"] == "test[holdout 1000]"
    # every phase timed in its own column: the metric families add up to the evaluation
    families = {k: v for k, v in result.items() if k.startswith("eval_") and k.endswith("_s") and k != "eval_time_s"}
    assert {"eval_classifier_s", "eval_reconstruction_s"} <= set(families)
    assert sum(families.values()) <= result["eval_time_s"] <= 1.5 * sum(families.values()) + 0.5
    assert 0 < result["images_s"] < result["eval_time_s"] + 5  # the image grids, timed apart


def test_non_finite_loss_is_recorded_as_diverged(data_root, faults):
    t = Trial({**BASE, "model": "faulty_vae_mlp", "epochs": 5, "nan_at_epoch": 2}, data_root=str(data_root))
    assert "status" not in t.train_epoch()
    r = t.train_epoch()
    assert r["status"] == "diverged" and r["diverged_epoch"] == 2 and r["done"] and "loss" in r["error"]


def test_a_finished_trial_saves_its_model_alone_and_loads_back_the_same(data_root, tmp_path):
    t = Trial({**BASE, "model": "vae_mlp", "epochs": 2}, data_root=str(data_root))
    while not t.train_epoch().get("done"):
        pass
    full, final = t.save(tmp_path / "state.pt"), t.save(tmp_path / "model.pt", final=True)
    # Adam's two moments per weight are most of a resumable state; a finished trial needs neither
    assert final.stat().st_size < 0.45 * full.stat().st_size
    back = Trial.load(final, data_root=str(data_root))
    assert back.epoch == 2 and back.history == t.history
    for (name, a), b in zip(t.model.state_dict().items(), back.model.state_dict().values()):
        assert a.equal(b), name
    x = t.data.eval.x[:64]
    assert back.model.reconstruct(x).equal(t.model.reconstruct(x))
    # a sweep's final checkpoint leaves the epochs to the trial's epochs file: the same model, no history
    bare = Trial.load(t.save(tmp_path / "bare.pt", final=True, history=False), data_root=str(data_root))
    assert bare.epoch == 2 and bare.history == [] and len(t.history) == 2
    assert all(a.equal(b) for a, b in zip(t.model.state_dict().values(), bare.model.state_dict().values()))


def test_loading_anything_but_a_saved_trial_is_one_clear_error(data_root, tmp_path):
    import pytest
    import torch

    from raygen.core.errors import RaygenError

    t = Trial({**BASE, "model": "vae_mlp", "epochs": 1, "hidden": [32]}, data_root=str(data_root))
    good = t.save(tmp_path / "model.pt", final=True)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:500])
    saved = torch.load(good, weights_only=True)
    saved["config"] = {**saved["config"], "hidden": [16]}  # weights of another shape
    other = tmp_path / "other.pt"
    torch.save(saved, other)
    cases = {truncated: "not a saved raygen trial", tmp_path: "not a saved raygen trial",
             tmp_path / "absent.pt": "not a saved raygen trial", other: "does not fit its config's model"}
    for path, message in cases.items():
        with pytest.raises(RaygenError, match=message) as err:
            Trial.load(path, data_root=str(data_root))
        assert str(path) in str(err.value)
