"""Data files never run code: checkpoints and cache entries are read with
``weights_only=True``; a crafted one is refused (a cache entry is rebuilt, a checkpoint
restarts its trial) and its payload never runs."""
from __future__ import annotations

import pathlib
from types import SimpleNamespace

import pytest
import torch

from raygen.core.diskcache import load_or_build, load_tensors
from raygen.core.signing import sig_path
from raygen.engine.trial import Trial
from raygen.sweep.trainable import GenerativeTrainable


class Payload:
    """Unpickling this calls ``Path.touch(marker)``: proof that code ran."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def crafted(path: pathlib.Path, marker: pathlib.Path, **good) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**good, "model": Payload(marker)}, path)
    return path


def test_the_crafted_file_would_run_code_if_unpickled(tmp_path):
    """The payload is real: a plain torch.load(weights_only=False) runs it."""
    marker = tmp_path / "ran"
    torch.load(crafted(tmp_path / "x.pt", marker), weights_only=False)
    assert marker.exists()


def test_a_crafted_cache_entry_is_rebuilt_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    path = crafted(tmp_path / "cache" / "reference" / "mnist.pt", marker, feats=torch.zeros(2))
    obj, hit = load_or_build(path, lambda: {"feats": torch.ones(3), "mu": torch.zeros(1), "sigma": torch.eye(1)},
                             keys=("feats", "mu", "sigma"))
    assert not marker.exists() and not hit and torch.equal(obj["feats"], torch.ones(3))
    again, hit = load_or_build(path, lambda: pytest.fail("recomputed a good entry"), keys=("feats", "mu", "sigma"))
    assert hit and torch.equal(again["feats"], torch.ones(3))  # the rebuilt entry replaced the crafted one


def test_an_entry_of_the_wrong_shape_is_rebuilt(tmp_path):
    path = tmp_path / "c.pt"
    torch.save({"feats": torch.zeros(2)}, path)  # an older layout: lacks mu and sigma
    obj, hit = load_or_build(path, lambda: {"feats": 1, "mu": 2, "sigma": 3}, keys=("feats", "mu", "sigma"))
    assert not hit and obj["mu"] == 2


def test_a_crafted_checkpoint_never_runs_and_the_trial_restarts(tmp_path, data_root, capsys):
    marker = tmp_path / "ran"
    config = {"model": "vae_mlp", "dataset": "mnist", "split": "test", "limit": 256, "max_batches": 2, "epochs": 3}
    ckpt = tmp_path / "checkpoint_000001"
    crafted(ckpt / "state.pt", marker, epoch=1)
    with pytest.raises(ValueError, match="checkpoint .*state.pt unreadable"):
        load_tensors(ckpt / "state.pt", Trial.STATE_KEYS, "checkpoint")
    trainable = SimpleNamespace(config=config, trial=Trial(config, data_root=str(data_root)), started=0, startup={})
    trainable._start = lambda cfg: setattr(trainable, "started", trainable.started + 1)
    trainable._restart = lambda why: GenerativeTrainable._restart(trainable, why)
    GenerativeTrainable.load_checkpoint(trainable, str(ckpt))
    assert not marker.exists() and trainable.started == 1
    assert "the trial restarts from epoch 0" in capsys.readouterr().err
    assert "unreadable" in trainable.startup["restarted"]  # the trial's row says why


def test_a_good_checkpoint_round_trips_as_data_only(tmp_path, data_root):
    config = {"model": "vae_mlp", "dataset": "mnist", "split": "test", "limit": 256, "max_batches": 2, "epochs": 3}
    t = Trial(config, data_root=str(data_root))
    t.train_epoch()
    torch.save(t.state(), tmp_path / "state.pt")
    state = load_tensors(tmp_path / "state.pt", Trial.STATE_KEYS, "checkpoint")  # weights_only=True
    resumed = Trial(config, data_root=str(data_root))
    resumed.load_state(state)
    assert resumed.epoch == 1 and torch.equal(resumed.batch_rng.get_state(), t.batch_rng.get_state())


def test_a_crafted_results_file_embeds_nothing_from_outside_the_run_and_escapes_its_names(tmp_path, data_root):
    import base64

    from raygen.report.page import write_report

    from report_fixtures import base_row, mnist_images, save_grid, write_run

    outside = tmp_path / "secret.png"
    save_grid(1 - mnist_images(data_root, 4), outside)  # a real PNG (unlike the run's own), outside the run
    evil = '"><script>alert(1)</script>_png'
    own = save_grid(mnist_images(data_root, 4), tmp_path / "run" / "trial_1" / "s.png")
    rows = [base_row(0, samples_png=str(outside), reconstructions_png="../secret.png", **{evil: "/etc/passwd"}),
            base_row(1, samples_png=f"trial_1/{own}", model="vae_conv")]
    run = write_run(tmp_path / "run", rows)
    html = write_report(run).read_text()
    secret = base64.b64encode(outside.read_bytes()).decode()
    assert secret not in html and "root:" not in html  # neither the outside PNG nor /etc/passwd
    assert "not embedded (outside the run folder)" in html
    assert html.count("<img ") >= 1  # the run's own image is there
    assert "<script>" not in html and 'id="img-' in html


def _entry(tmp_path, value: float) -> dict:
    return {"feats": torch.full((3,), value), "mu": torch.zeros(1), "sigma": torch.eye(1)}


def test_a_well_formed_but_foreign_cache_entry_is_recomputed(tmp_path, monkeypatch, capsys):
    # a poisoned cache: data only (weights_only reads it), the right keys, the wrong numbers
    path = tmp_path / "cache" / "classifier" / "mnist.pt"
    good, hit = load_or_build(path, lambda: _entry(tmp_path, 1.0), keys=("feats", "mu", "sigma"))
    assert not hit and sig_path(path).is_file()
    again, hit = load_or_build(path, lambda: pytest.fail("recomputed a signed entry"), keys=("feats", "mu", "sigma"))
    assert hit and torch.equal(again["feats"], good["feats"])
    torch.save(_entry(tmp_path, 666.0), path)  # swapped in by someone else, its old signature beside it
    obj, hit = load_or_build(path, lambda: _entry(tmp_path, 1.0), keys=("feats", "mu", "sigma"))
    assert not hit and torch.equal(obj["feats"], good["feats"])
    assert "was not written by raygen for this user" in capsys.readouterr().err
    # a whole cache copied from another user or machine (another key): entries and signatures alike
    monkeypatch.setenv("RAYGEN_KEY", str(tmp_path / "other_key"))
    obj, hit = load_or_build(path, lambda: _entry(tmp_path, 2.0), keys=("feats", "mu", "sigma"))
    assert not hit and torch.equal(obj["feats"], torch.full((3,), 2.0))
    assert (tmp_path / "other_key").stat().st_mode & 0o077 == 0  # the key: its owner's alone
