"""Values as JSON carries them and as a person reads them: the one JSON-safe converter and
the one number formatter, shared by every layer (the sweep's files, the console, the report)."""
from __future__ import annotations

import math
from typing import Any

DASH = "—"


def plain(v: Any) -> Any:
    """A value as plain JSON: numpy scalars as Python numbers, NaN as None, arrays and tuples
    as lists (nested too)."""
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    return [plain(x) for x in v] if isinstance(v, (list, tuple)) else v


def number(v: Any, digits: int = 4, whole: bool = False) -> str:
    """``digits`` significant digits, no exponent for everyday magnitudes, blanks (None, NaN,
    NA) as a dash; integers with thousands separators. ``whole``: a float that is an integer
    as one, no separators (the console's terse form: 2.0 -> "2")."""
    if v is None or type(v).__name__ == "NAType":  # pandas.NA without importing pandas
        return DASH
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()  # numpy scalars
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v) if whole else f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return DASH
        if whole:
            return str(int(v)) if v == int(v) and abs(v) < 1e6 else f"{v:.{digits}g}"
        return f"{v:.{decimals(v, digits)}f}" if 1e-4 <= abs(v) < 1e6 or v == 0 else f"{v:.{digits - 1}e}"
    return str(v)


def decimals(v: float, digits: int = 4) -> int:
    """Decimals that show ``digits`` significant digits of ``v`` (at most 8)."""
    return int(min(8, max(0, digits - 1 - math.floor(math.log10(abs(v)))))) if v else 0
