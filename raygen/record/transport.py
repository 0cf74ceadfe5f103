"""The one encoding of what crosses the Ray boundary: a trial's config (lists as tagged
JSON, since Ray Tune walks into lists as nested search spaces), a stack's member configs,
and the per-trial histories a trial reports. Encoded here, decoded here, nowhere else.

A trial's whole history does not ride in its results: each Ray step carries its own epochs,
and a trial that ends writes every epoch (complete across restarts) to ``HISTORY_NAME`` in
its folder, which its last result names (``HISTORY_FILE``). Ray's experiment state, which
keeps each trial's last result, so stays small however many epochs the trials train.

The transport keys ride in a trial's results beside its numbers; they never become
columns (``rows`` turns them into the trial's history and its members' rows)."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from raygen.core.values import plain

# Ray Tune walks into list values of a config as nested search spaces, which breaks the
# pre-set grid points of a sweep (e.g. hidden: [500, 500, 2000] in one variant and
# [512, 256] in another). Lists therefore cross the Tune boundary as tagged JSON strings.
_TUNE_LIST = "json-list:"
STACK = "_stack"  # config key: a stacked trial's member configs (``engine.stacking``)

HISTORY = "history_json"  # every epoch of the trial (a stack: of each member): read from HISTORY_FILE
HISTORY_FILE = "history_file"  # with a trial's last result: its file of every epoch, in its folder
HISTORY_NAME = "history.json"
EPOCHS = "epochs_json"  # the epochs of this Ray step
MEMBERS = "members_json"  # a stack's members' last results
MEMBER_EPOCHS = "member_epochs_json"  # a stack's members' epochs of this step
TRANSPORT_KEYS = frozenset({HISTORY, HISTORY_FILE, EPOCHS, MEMBERS, MEMBER_EPOCHS})


def _dumps(value: Any) -> str:
    return json.dumps(value, default=plain)  # numpy scalars as numbers; NaN stays NaN (Ray's JSON has it)


def _loads(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, str) and raw else None


# --- configs ---------------------------------------------------------------------------------


def to_tune(config: dict[str, Any]) -> dict[str, Any]:
    return {k: _TUNE_LIST + json.dumps(list(v)) if isinstance(v, (list, tuple)) else v for k, v in config.items()}


def from_tune(config: dict[str, Any]) -> dict[str, Any]:
    return {k: json.loads(v[len(_TUNE_LIST):]) if isinstance(v, str) and v.startswith(_TUNE_LIST) else v
            for k, v in config.items()}


def given_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """The trial's config as the sweep set it: lists decoded from their Tune form, Ray's and
    raygen's private keys (``_...``: the stack, the testing aids) and unset keys dropped (None:
    a key only other variants of a grid have, so the dataclass default applies)."""
    return {k: v for k, v in from_tune(config or {}).items() if not k.startswith("_") and v is not None}


def stacked_config(configs: list[dict[str, Any]]) -> dict[str, Any]:
    """One Ray trial for ``configs``: the first's config (what Ray and the console see) with
    every member's under ``_stack``; a single config as itself."""
    first = to_tune(configs[0])
    return first if len(configs) == 1 else {**first, STACK: json.dumps([to_tune(c) for c in configs])}


def stack_of(config: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """The member configs of a stacked trial (``_stack``, set by the sweep: ``stacking.py``), else None."""
    return _loads((config or {}).get(STACK)) or None


# --- results -----------------------------------------------------------------------------


def trial_epochs(history: list[dict[str, Any]], first: int, done: bool) -> dict[str, str]:
    """What a trial's step carries of its epochs: this step's (from ``first``), and when it
    ended the name of its history file (``history_text``, written by the trial)."""
    return {EPOCHS: _dumps(history[first:]), **({HISTORY_FILE: HISTORY_NAME} if done else {})}


def stack_epochs(last: list[dict[str, Any] | None], histories: list[list[dict]], firsts: list[int],
                 done: bool) -> dict[str, str]:
    """What a stack's step carries: each member's last result (numbers, strings and flags),
    each member's epochs of this step, and when the stack ended its history file's name."""
    out = {MEMBERS: _dumps([None if r is None else {k: v for k, v in r.items() if _scalar(v)} for r in last]),
           MEMBER_EPOCHS: _dumps([h[f:] for h, f in zip(histories, firsts)])}
    if done:
        out[HISTORY_FILE] = HISTORY_NAME
    return out


def history_text(history: list) -> str:
    """The history file's content: a trial's epochs, or a stack's list of its members' epochs."""
    return _dumps(history)


def with_history(metrics: dict[str, Any], read: Callable[[str], str | None]) -> dict[str, Any]:
    """``metrics`` with the trial's whole history (``HISTORY``) when its last result names a
    history file: ``read(name)`` gives the file's text (None when it cannot be read: then the
    epochs each step carried stand in)."""
    name = metrics.get(HISTORY_FILE)
    text = read(name) if isinstance(name, str) and name and "/" not in name and name != ".." else None
    return {**metrics, HISTORY: text} if text else metrics


def _scalar(v: Any) -> bool:
    return isinstance(v, (int, float, str, bool)) or v is None


def members(metrics: dict[str, Any]) -> list[dict[str, Any] | None]:
    """A stack's members' last results (empty for a plain trial)."""
    return _loads(metrics.get(MEMBERS)) or []


def history(metrics: dict[str, Any]) -> list | None:
    """The epochs a trial's last result carries: a list of epochs (a stack: one list per member)."""
    return _loads(metrics.get(HISTORY))


def result_epochs(result: dict[str, Any]) -> list:
    """The epochs one result carries: a trial's list of epochs, or a stack's list of its
    members' lists."""
    return _loads(result.get(MEMBER_EPOCHS if MEMBERS in result else EPOCHS)) or []


def step_epochs(logged, key: str = EPOCHS) -> list | None:
    """The epochs of each logged step (Ray's per-step frame), one decoded list per step; None
    when the steps carry none. ``key``: ``MEMBER_EPOCHS`` for a stack (one list per member)."""
    if logged is None or key not in logged:
        return None
    return [_loads(s) for s in logged[key] if isinstance(s, str)]
