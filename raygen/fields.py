"""Config fields that carry their allowed values (plain Python, used by every layer's
dataclass configs): ``epochs: int = setting(10, ge=1)``, ``act: str = setting("relu",
choices=ACTIVATIONS)``. ``config.from_dict`` checks them whenever a config is built, so a
bad value is one clear line before any trial starts.
"""
from __future__ import annotations

from dataclasses import field
from typing import Any


def setting(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
            choices: tuple | None = None) -> Any:
    """A config field with its allowed values, checked (for every element of a tuple) when a
    config is built from a sweep, a ``--set`` or Python: ``epochs: int = setting(10, ge=1)``."""
    return field(default=default, metadata={"ge": ge, "gt": gt, "le": le, "choices": choices})


def rules(cls: type, name: str) -> dict:
    """The allowed values of field ``name`` of dataclass ``cls``: the nearest declaration in its
    class hierarchy that has any (a subclass that only changes a default keeps its parent's)."""
    for klass in cls.__mro__:
        f = getattr(klass, "__dataclass_fields__", {}).get(name)
        if f is not None and any(v is not None for v in f.metadata.values()):
            return dict(f.metadata)
    return {}


def allowed(cls: type, name: str, value: Any) -> str | None:
    """What field ``name`` of ``cls`` allows, when ``value`` (or an element of it) is not; None when it is."""
    m = rules(cls, name)
    bounds = [(b, op, test) for b, op, test in ((m.get("gt"), ">", float.__gt__), (m.get("ge"), ">=", float.__ge__),
                                                (m.get("le"), "<=", float.__le__)) if b is not None]
    for v in value if isinstance(value, tuple) else (value,):
        if m.get("choices") is not None and v not in m["choices"]:
            return f"one of {', '.join(map(str, m['choices']))}"
        if isinstance(v, (int, float)) and not all(test(float(v), float(b)) for b, _, test in bounds):
            return "a number " + " and ".join(f"{op} {b:,.10g}" for b, op, _ in bounds)
    return None
