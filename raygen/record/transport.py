"""The one encoding of what crosses the Ray boundary: a trial's config (lists as tagged
JSON, since Ray Tune walks into lists as nested search spaces), a stack's member configs,
and the per-trial histories a trial reports. Encoded here, decoded here, nowhere else.

No epoch rides in a trial's results: each Ray step appends its epochs to ``EPOCHS_NAME`` in
the trial's folder (a gzip member per step, one JSON line: the step's epochs, a stack's list of
its members'), and a trial that ends rewrites the file as one line of every epoch (complete
across restarts); its results name the file (``EPOCHS_FILE``). Ray's experiment state, its
result.json and progress.csv, which keep each result, so stay small however many epochs the
trials train (a stack of five 20,000-epoch trials: 6 MB of gzipped JSON in its folder).
Readers keep each epoch's last line (a restored trial appends the epochs after its checkpoint
again). Runs of earlier versions named a whole-history file (``HISTORY_FILE``) or carried each
step's epochs in its results: both still read.

The transport keys ride in a trial's results beside its numbers; they never become
columns (``rows`` turns them into the trial's history and its members' rows)."""
from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from raygen.core.values import plain

# Ray Tune walks into list values of a config as nested search spaces, which breaks the
# pre-set grid points of a sweep (e.g. hidden: [500, 500, 2000] in one variant and
# [512, 256] in another). Lists therefore cross the Tune boundary as tagged JSON strings.
_TUNE_LIST = "json-list:"
STACK = "_stack"  # config key: a stacked trial's member configs (``engine.stacking``)

STEPS = "steps_json"  # each step's epochs, one JSON line per step: read from EPOCHS_FILE
EPOCHS_FILE = "epochs_file"  # with every result: the file its steps' epochs are appended to
EPOCHS_NAME = "epochs.jsonl.gz"
MEMBERS = "members_json"  # a stack's members' last results
# Earlier raygen versions: a whole-history file an ended trial named, and each step's epochs in its result
HISTORY = "history_json"  # every epoch of the trial (a stack: of each member): read from HISTORY_FILE
HISTORY_FILE = "history_file"
HISTORY_NAME = "history.json"
EPOCHS = "epochs_json"  # the epochs of this Ray step
MEMBER_EPOCHS = "member_epochs_json"  # a stack's members' epochs of this step
TRANSPORT_KEYS = frozenset({HISTORY, HISTORY_FILE, STEPS, EPOCHS_FILE, EPOCHS, MEMBERS, MEMBER_EPOCHS})


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


def step_line(epochs: list) -> bytes:
    """One step's line of ``EPOCHS_NAME`` (a gzip member: the file is their concatenation):
    the step's epochs, or a stack's list of its members' epochs of the step."""
    return gzip.compress((_dumps(epochs) + "\n").encode(), compresslevel=6)


def trial_epochs() -> dict[str, str]:
    """What a trial's step carries of its epochs: its file's name."""
    return {EPOCHS_FILE: EPOCHS_NAME}


def stack_epochs(last: list[dict[str, Any] | None]) -> dict[str, str]:
    """What a stack's step carries: each member's last result (numbers, strings and flags) and
    its epochs file's name."""
    members_last = [None if r is None else {k: v for k, v in r.items() if _scalar(v)} for r in last]
    return {MEMBERS: _dumps(members_last), **trial_epochs()}


def _gunzip(raw: bytes) -> bytes:
    """The concatenated gzip members of ``raw``, up to the first one cut short (a step being
    appended right now, or a trial killed mid-write)."""
    out, rest = [], raw
    while rest:
        d = zlib.decompressobj(wbits=31)
        try:
            chunk = d.decompress(rest)
        except zlib.error:
            break
        if not d.eof:
            break
        out.append(chunk)
        rest = d.unused_data
    return b"".join(out)


def _text(raw: bytes | str | None, name: str) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    try:
        return (_gunzip(raw) if name.endswith(".gz") else raw).decode()
    except UnicodeDecodeError:
        return None


def local_epochs(folder: str | os.PathLike | None, stacked: bool) -> list[list[dict[str, Any]]]:
    """Each member's epochs (one list for a plain trial) a trial has written to its folder so
    far, each epoch once (its last line); read where the folder is on this machine, [] where it
    is not (yet)."""
    try:
        raw = (Path(folder) / EPOCHS_NAME).read_bytes() if folder else None
    except OSError:
        raw = None
    steps = step_epochs({STEPS: _text(raw, EPOCHS_NAME)}, None) or []
    if not stacked:
        return [_last_of_each([e for s in steps for e in s])]
    k = max((len(s) for s in steps), default=0)
    return [_last_of_each([e for s in steps if i < len(s) for e in s[i]]) for i in range(k)]


def _last_of_each(epochs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Epochs in order, each epoch's last line (a restored trial re-runs those after its checkpoint)."""
    by_epoch = {e.get("epoch", i): e for i, e in enumerate(epochs)}
    return [by_epoch[k] for k in sorted(by_epoch)]


def with_history(metrics: dict[str, Any], read: Callable[[str], bytes | str | None]) -> dict[str, Any]:
    """``metrics`` with the trial's whole history (``HISTORY``) when its last result names a
    history file, and its steps' epochs (``STEPS``) when it names an epochs file: ``read(name)``
    gives a file's bytes (None when it cannot be read: then what the results carried stands in)."""
    out = dict(metrics)
    for key, named in ((HISTORY, HISTORY_FILE), (STEPS, EPOCHS_FILE)):
        name = metrics.get(named)
        if isinstance(name, str) and name and "/" not in name and name != "..":
            text = _text(read(name), name)
            if text:
                out[key] = text
    return out


def _scalar(v: Any) -> bool:
    return isinstance(v, (int, float, str, bool)) or v is None


def members(metrics: dict[str, Any]) -> list[dict[str, Any] | None]:
    """A stack's members' last results (empty for a plain trial)."""
    return _loads(metrics.get(MEMBERS)) or []


def history(metrics: dict[str, Any]) -> list | None:
    """The epochs a trial's last result carries: a list of epochs (a stack: one list per member)."""
    return _loads(metrics.get(HISTORY))


def step_epochs(metrics: dict[str, Any], logged, key: str = EPOCHS) -> list | None:
    """The epochs of each step, one decoded list per step: from the trial's epochs file
    (``STEPS``), else from the results of an earlier raygen's run (Ray's per-step frame,
    ``key``: ``MEMBER_EPOCHS`` for a stack, one list per member); None when there are none."""
    lines = metrics.get(STEPS)
    if isinstance(lines, str) and lines:
        out = []
        for line in lines.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:  # a line cut short
                continue
        return out
    if logged is None or key not in logged:
        return None
    return [_loads(s) for s in logged[key] if isinstance(s, str)]
