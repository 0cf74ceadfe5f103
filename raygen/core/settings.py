"""Config fields that carry their allowed values (plain Python, used by every layer's
dataclass configs): ``epochs: int = setting(10, ge=1)``, ``act: str = setting("relu",
choices=ACTIVATIONS)``. ``from_dict`` builds a dataclass from plain values, coercing each to
its field's type and checking its allowed values, so a bad value is one clear line before
any trial starts.
"""
from __future__ import annotations

import typing
from dataclasses import field, fields
from typing import Any

from raygen.core.errors import RaygenError, did_you_mean


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


def _coerce(value: Any, typ: Any, key: str, where: str) -> Any:
    origin = typing.get_origin(typ)
    if origin is typing.Union or str(origin) == "types.UnionType":  # Optional[...] / X | None
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        return None if value is None else _coerce(value, args[0], key, where)
    try:
        if typ is not bool and isinstance(value, bool):  # YAML's true is no count of epochs
            raise ValueError(value)
        if typ in (int, float) and isinstance(value, (list, tuple, dict)):
            raise TypeError(value)
        if typ is str and not isinstance(value, (str, int, float)):
            raise TypeError(value)
        if typ is bool:
            if isinstance(value, str):
                if value.lower() in ("true", "yes", "1"):
                    return True
                if value.lower() in ("false", "no", "0"):
                    return False
                raise ValueError(value)
            if not isinstance(value, (int, float)):
                raise TypeError(value)
            return bool(value)
        if typ is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if typ is float:
            out = float(value)
            if out != out or out in (float("inf"), float("-inf")):
                raise ValueError(value)
            return out
        if typ is str:
            return str(value)
        if origin in (tuple, list):
            inner = typing.get_args(typ)[0] if typing.get_args(typ) else Any
            seq = value if isinstance(value, (list, tuple)) else [value]
            try:
                return tuple(_coerce(v, inner, key, where) for v in seq) if inner is not Any else tuple(seq)
            except RaygenError:  # say the list's type: hidden='512,256' is no "int", it is no list of them
                raise RaygenError(f"{where}: {key}={value!r} is not a valid list of {inner.__name__} (a YAML "
                                  f"list: [a, b])") from None
    except (TypeError, ValueError):
        name = getattr(typ, "__name__", str(typ))
        raise RaygenError(f"{where}: {key}={value!r} is not a valid {name}") from None
    return value


def from_dict(cls: type, values: dict[str, Any], where: str) -> Any:
    """Build dataclass ``cls`` from ``values``, coercing types and checking each field's
    allowed values (``setting``); unknown keys are an error."""
    hints = typing.get_type_hints(cls)
    by_name = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise RaygenError(f"{where}: unknown key(s) {', '.join(unknown)}.{did_you_mean(unknown[0], by_name)} "
                          f"Valid keys: {', '.join(sorted(by_name))}.")
    out = {k: _coerce(v, hints[k], k, where) for k, v in values.items()}
    for k, v in out.items():
        if isinstance(v, tuple) and not v and rules(cls, k):
            raise RaygenError(f"{where}: {k}=[] is empty; give at least one value")
        why = allowed(cls, k, v)
        if why:
            raise RaygenError(f"{where}: {k}={values[k]!r} is not allowed; {k} must be {why}")
    return cls(**out)
