"""The one encoding of what crosses the Ray boundary: a trial's config (lists as tagged
JSON, since Ray Tune walks into lists as nested search spaces), a stack's member configs,
and the per-trial histories a trial reports. Encoded here, decoded here, nowhere else."""
from __future__ import annotations

import json
from typing import Any

# Ray Tune walks into list values of a config as nested search spaces, which breaks the
# pre-set grid points of a sweep (e.g. hidden: [500, 500, 2000] in one variant and
# [512, 256] in another). Lists therefore cross the Tune boundary as tagged JSON strings.
_TUNE_LIST = "json-list:"


def to_tune(config: dict[str, Any]) -> dict[str, Any]:
    return {k: _TUNE_LIST + json.dumps(list(v)) if isinstance(v, (list, tuple)) else v for k, v in config.items()}


def from_tune(config: dict[str, Any]) -> dict[str, Any]:
    return {k: json.loads(v[len(_TUNE_LIST):]) if isinstance(v, str) and v.startswith(_TUNE_LIST) else v
            for k, v in config.items()}


def stack_of(config: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """The member configs of a stacked trial (``_stack``, set by the sweep: ``stacking.py``), else None."""
    raw = (config or {}).get("_stack")
    return json.loads(raw) if isinstance(raw, str) and raw else None
