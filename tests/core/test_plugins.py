"""$RAYGEN_PLUGINS: a user's modules join the registries (by file path or module name), each
imported once; one that cannot be imported is one clear error."""
from __future__ import annotations

import subprocess
import sys

import pytest

from raygen.core.errors import RaygenError
from raygen.core.registry import MODELS

from conftest import FAULTS_PLUGIN, REPO

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


@pytest.mark.slow  # a fresh Python process (torch's import) or a model trained end to end
@pytest.mark.parametrize("first", ["raygen.models.vae", "raygen.engine.config", "raygen.sweep.spec"])
def test_a_plugin_joins_a_fresh_process_whatever_it_imports_first(monkeypatch, first):
    """Registry lookups run while raygen's own modules import (a field's choices): the plugin,
    which imports them too, waits for a lookup made after."""
    monkeypatch.setenv("RAYGEN_PLUGINS", str(FAULTS_PLUGIN))
    code = f"import {first}; from raygen.core.registry import MODELS; print('faulty_vae_mlp' in MODELS)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.stdout.strip() == "True", out.stderr[-2000:]
