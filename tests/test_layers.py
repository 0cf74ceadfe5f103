"""The layers point one way: core -> record -> data -> models -> metrics -> engine -> sweep;
the report reads the record (Parquet and images) only. Checked on the source (every import
statement, also those inside functions) and on what importing a module really loads."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "raygen"  # tests/test_layers.py
LAYERS = ("core", "record", "data", "models", "metrics", "engine", "sweep")
# package -> the raygen packages (and third-party libraries) it may not import: each layer
# imports only those below it; the report reads the record alone.
RULES = {
    **{f"raygen.{layer}": tuple(f"raygen.{above}" for above in (*LAYERS[i + 1:], "report"))
       for i, layer in enumerate(LAYERS[:-1])},
    "raygen.record": ("torch", "ray", *(f"raygen.{p}" for p in (*LAYERS[2:], "report"))),
    "raygen.models": ("ray", *(f"raygen.{p}" for p in (*LAYERS[4:], "report"))),
    "raygen.engine": ("ray", "raygen.sweep", "raygen.report"),
    "raygen.report": ("torch", "ray", *(f"raygen.{p}" for p in LAYERS[2:])),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.add(name)
            out.update(f"{name}.{a.name}" for a in node.names)  # "from . import x" imports a module x
    return out


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations() -> list[str]:
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        mod = module_name(path)
        if mod.count(".") == 1 and not (PKG / mod.split(".")[1]).is_dir():
            bad.append(f"{mod} is a loose module at the top of raygen/: put it in its layer's package")
        for layer, forbidden in RULES.items():
            if under(mod, layer):
                bad += [f"{mod} imports {n}" for n in sorted(imports(path)) for f in forbidden if under(n, f)]
    return bad


def test_no_module_imports_from_a_layer_above_it():
    assert violations() == []


def test_the_check_sees_a_forbidden_import(tmp_path, monkeypatch):
    fake = tmp_path / "raygen" / "models"
    fake.mkdir(parents=True)
    (fake / "leaky.py").write_text("def f():\n    from ..metrics.evaluate import evaluate\n    from ray import tune\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", tmp_path / "raygen")
    found = violations()
    assert "raygen.models.leaky imports raygen.metrics.evaluate" in found
    assert "raygen.models.leaky imports ray" in found


LIGHT = {  # module -> what importing it must not load
    "raygen.report.page": ("torch", "ray"), "raygen.report.__main__": ("torch", "ray"),
    "raygen.report.run": ("torch", "ray"), "raygen.record.rows": ("torch", "ray"),
    "raygen.record.transport": ("torch", "ray"), "raygen.record.published": ("torch", "ray"),
    "raygen.record.columns": ("torch", "ray"),
    # what --help and --list need: the command line and the sweep files
    "raygen.sweep.spec": ("torch", "ray", "pandas"), "raygen.sweep.cli": ("torch", "ray", "pandas"),
}


@pytest.mark.parametrize("module", sorted(LIGHT))
def test_light_modules_load_nothing_heavy(module):
    heavy = LIGHT[module]
    code = f"import sys, {module}; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_help_imports_neither_torch_nor_ray():
    code = ("import sys, runpy; sys.argv = ['raygen.sweep', '--help']\n"
            "try:\n    runpy.run_module('raygen.sweep', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in ('torch', 'ray', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "--list" in out.stdout and "LOADED []" in out.stdout


@pytest.mark.slow  # a fresh Python process (torch's import) or a model trained end to end
def test_planning_every_shipped_sweep_never_imports_torch_dynamo():
    """The driver builds each distinct model on the meta device (plan.split_all), where a factory
    with a Python decomposition (torch.eye, torch.rand) imports torch._dynamo: seconds before Ray starts."""
    code = ("import sys\nfrom raygen.sweep.plan import make_plan\nfrom raygen.sweep.spec import available, load_sweep\n"
            "for name in available():\n    make_plan(load_sweep(name), smoke=True)\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stdout + out.stderr[-2000:]
