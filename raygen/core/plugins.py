"""Your own models, datasets and metrics in a sweep, without editing raygen: name the modules
that register them in ``$RAYGEN_PLUGINS`` (comma-separated; each a module name on
``sys.path`` or a ``.py`` file path), e.g. ``RAYGEN_PLUGINS=~/my_models.py``, where the module
does ``@MODELS.register("my_vae")``.

Every registry imports them before its first lookup (``Registry._load``), after raygen's
own modules, so a plugin may subclass a built-in model. A lookup made while one of raygen's
modules is still importing (a config field's choices, say) leaves them to the next lookup:
their own imports of raygen could not complete yet. The variable is read at each lookup and
each module imported once per process: the Ray workers a local sweep starts inherit the
driver's environment and import the same plugins when they look up the trial's model (on a
cluster, set it on every node as you would ``RAYGEN_DATA_ROOT``).
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from raygen.core.errors import RaygenError

ENV = "RAYGEN_PLUGINS"
_imported: dict[str, ModuleType | None] = {}  # entry -> module (None while it imports)


def load_plugins() -> None:
    """Import the modules ``$RAYGEN_PLUGINS`` names that this process has not imported yet."""
    entries = [e.strip() for e in os.environ.get(ENV, "").split(",") if e.strip() and e.strip() not in _imported]
    if not entries or _raygen_importing():
        return
    for entry in entries:
        if entry not in _imported:
            _imported[entry] = None  # a plugin that looks up a registry while it imports does not recurse
            try:
                _imported[entry] = _import(entry)
            except Exception as exc:
                del _imported[entry]  # the next lookup says it again
                raise RaygenError(f"${ENV}: cannot import {entry!r} ({type(exc).__name__}: {exc})") from None


def _raygen_importing() -> bool:
    """Whether a raygen module is part-way through its import (its spec's ``_initializing``:
    what CPython itself checks to say "partially initialized module")."""
    return any(getattr(getattr(m, "__spec__", None), "_initializing", False)
               for name, m in list(sys.modules.items()) if name == "raygen" or name.startswith("raygen."))


def _import(entry: str) -> ModuleType:
    if not entry.endswith(".py") and "/" not in entry and os.sep not in entry:
        return importlib.import_module(entry)
    path = Path(entry).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such file {path}")
    name = f"raygen_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickle look classes up by their module's name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
