"""The Python API's bad arguments are RaygenErrors naming the fix, raised before any data is read
or any epoch trained (not torch's errors from deep inside, nor a trained model lost at the end)."""
from __future__ import annotations

import pytest
import torch

from raygen.core.errors import RaygenError
from raygen.engine.stacking import StackedTrial
from raygen.engine.trial import Trial

COSINE = {"model": "vae_mlp", "dataset": "cosine", "epochs": 1, "hidden": [8], "latent_dim": 1, "output": "linear",
          "recon": "mse"}


@pytest.mark.parametrize("device, message", [
    ("tpu", "device 'tpu' is not one torch knows; give cpu or cuda"),
    (None, "device None is not one torch knows"),
    ("meta", "device 'meta': raygen trains on cpu or cuda"),
    pytest.param("cuda", "no CUDA GPU here", marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU")),
])
def test_a_device_this_machine_lacks_is_refused_before_the_data_is_read(tmp_path, device, message):
    with pytest.raises(RaygenError, match=message):
        Trial({**COSINE, "dataset": "mnist"}, device=device, data_root=str(tmp_path))  # no data there: read later
    with pytest.raises(RaygenError, match=message):
        StackedTrial([COSINE, {**COSINE, "seed": 1}], device=device)


def test_an_out_dir_that_cannot_be_written_is_refused_before_training(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(RaygenError, match="out_dir .*afile.* cannot be made"):
        Trial(COSINE, out_dir=tmp_path / "afile")
    with pytest.raises(RaygenError, match="out_dir .*cannot be made"):
        Trial(COSINE, out_dir=tmp_path / "afile" / "below")


def test_configs_and_states_of_the_wrong_kind_say_what_is_expected():
    with pytest.raises(RaygenError, match="a trial's config is a dict like .* got list"):
        Trial(["vae_mlp"])
    with pytest.raises(RaygenError, match="give a list of trial configs"):
        StackedTrial(COSINE)
    t = Trial(COSINE)
    for state in (None, {}):
        with pytest.raises(RaygenError, match="load_state takes what Trial.state"):
            t.load_state(state)
    wider = Trial({**COSINE, "hidden": [16]})
    with pytest.raises(RaygenError, match="this state does not fit this trial's 'vae_mlp' model: Error"):
        t.load_state(wider.state())
    stack = StackedTrial([COSINE, {**COSINE, "seed": 1}])
    with pytest.raises(RaygenError, match="a single trial's state loads into its Trial"):
        stack.load_state(t.state())


def test_a_batch_norm_model_is_refused_a_one_item_batch_before_training(data_root):
    with pytest.raises(RaygenError, match="batch_size=1: gan_mlp normalises over each batch"):
        Trial({"model": "gan_mlp", "dataset": "mnist", "split": "test", "batch_size": 1, "epochs": 1},
              data_root=str(data_root))


def test_load_says_what_a_file_is_when_it_is_no_saved_trial(tmp_path):
    t = Trial(COSINE)
    torch.save(t.state(), tmp_path / "state.pt")  # what a sweep's checkpoint of a trial under way holds
    with pytest.raises(RaygenError, match="is a sweep's checkpoint of a trial under way .* load the trial's final "
                                          "model.pt"):
        Trial.load(tmp_path / "state.pt")
    (tmp_path / "table.pt").write_bytes(b"PAR1 not a torch file")
    with pytest.raises(RaygenError) as err:
        Trial.load(tmp_path / "table.pt")
    assert "is not a saved raygen trial" in str(err.value) and "\n" not in str(err.value) \
        and "weights_only" not in str(err.value)  # torch's advice to load it unsafely is not repeated
