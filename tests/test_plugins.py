"""$RAYGEN_PLUGINS: a user's modules join the registries (by file path or module name), each
imported once; one that cannot be imported is one clear error."""
from __future__ import annotations

import pytest

from raygen.core.errors import RaygenError
from raygen.core.registry import MODELS

PLUGIN = '''
from raygen.core.registry import MODELS
from raygen.models.vae import MLPVAE

@MODELS.register("{name}")
class Mine(MLPVAE):
    pass
'''


def test_a_plugin_file_registers_a_model(tmp_path, monkeypatch):
    path = tmp_path / "my_models.py"
    path.write_text(PLUGIN.format(name="my_vae_from_file"))
    monkeypatch.setenv("RAYGEN_PLUGINS", f" {path} ,")
    assert "my_vae_from_file" in MODELS.names()
    assert MODELS.get("my_vae_from_file").__mro__[1].registry_name == "vae_mlp"
    MODELS.get("my_vae_from_file")  # imported once: a second import would register the name twice


def test_a_plugin_module_by_name(tmp_path, monkeypatch):
    (tmp_path / "my_plugin_pkg.py").write_text(PLUGIN.format(name="my_vae_by_name"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("RAYGEN_PLUGINS", "my_plugin_pkg")
    assert "my_vae_by_name" in MODELS


@pytest.mark.parametrize("entry", ["no_such_raygen_plugin", "/nowhere/plugin.py"])
def test_a_plugin_that_cannot_be_imported_is_one_clear_error(monkeypatch, entry):
    monkeypatch.setenv("RAYGEN_PLUGINS", entry)
    with pytest.raises(RaygenError, match=r"\$RAYGEN_PLUGINS: cannot import"):
        MODELS.get("vae_mlp")
