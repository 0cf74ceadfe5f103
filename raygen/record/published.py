"""Published numbers as data: a sweep file's ``paper:`` block, validated and flattened into
one ``Published`` value per number the paper prints. The sweep writes the block into its
run's metadata, so the report can set raygen's figures beside the paper's without the
sweep file. Plain Python (no torch, no Ray)::

    paper:
      cite: "Ko, Ko and Kim 2024, ... ETRI Journal"
      protocol: {extractor: inception, samples: 10000, reference: test, train_split: train, epochs: 30,
                 hardware: NVIDIA A100}
      values:                       # one number each, with the setting it belongs to
        - {where: Table 2, metric: recon_mse, model: vae_mlp, dataset: cosine, value: 0.5131, std: 0.0041}
        - {where: section 4.4.2, metric: epsilon1, model: savae, latent_dim: 2, value: [0.003, 0.005]}
      tables:                       # a printed table: rows x columns of one metric
        - {where: Table 3, metric: fid, rows: dataset, columns: model, ratio_to: null,
           values: {mnist: {vae: 123.44, gae: 44.30}}}

A value is a number or an interval ``[lo, hi]`` (a threshold the paper brackets).
``ratio_to`` (tables) compares each cell with the named column's, for numbers such as
training seconds on other hardware, where only ratios carry over.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from raygen.core.errors import RaygenError

PROTOCOL_KEYS = ("extractor", "samples", "reference", "train_split", "epochs", "batch_size", "hardware")
VALUE_KEYS = ("where", "metric", "value", "std", "note")  # the rest of a value's keys are its setting


@dataclass(frozen=True)
class Published:
    where: str  # "Table 3", "section 4.4.2"
    metric: str  # the raygen column it corresponds to
    value: float | tuple[float, float]
    setting: dict[str, Any] = field(default_factory=dict)  # e.g. {model: gae, dataset: mnist}
    std: float | None = None
    note: str = ""
    table: str | None = None  # the table it belongs to (for rank agreement)
    column_key: str | None = None  # for a table's cells: the setting key its columns are (e.g. model)
    ratio_to: str | None = None  # the column (e.g. a model) its ratio is taken against

    @property
    def interval(self) -> bool:
        return isinstance(self.value, tuple)


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise RaygenError(f"{where}: {v!r} is not a number")
    return float(v)


def _value(v: Any, where: str) -> float | tuple[float, float]:
    if isinstance(v, list):
        if len(v) != 2:
            raise RaygenError(f"{where}: an interval is [lo, hi], got {v!r}")
        lo, hi = (_number(x, where) for x in v)
        if lo > hi:
            raise RaygenError(f"{where}: interval [{lo}, {hi}] has lo > hi")
        return lo, hi
    return _number(v, where)


def _one(item: Any, where: str) -> Published:
    if not isinstance(item, dict):
        raise RaygenError(f"{where}: each value is a mapping like {{where: Table 2, metric: ..., value: ...}}")
    missing = [k for k in ("where", "metric", "value") if k not in item]
    if missing:
        raise RaygenError(f"{where}: value {item!r} lacks {', '.join(missing)}")
    setting = {k: v for k, v in item.items() if k not in VALUE_KEYS}
    std = None if item.get("std") is None else _number(item["std"], where)
    return Published(str(item["where"]), str(item["metric"]), _value(item["value"], where), setting, std,
                     str(item.get("note", "")))


def _table(spec: Any, where: str) -> list[Published]:
    if not isinstance(spec, dict):
        raise RaygenError(f"{where}: each table is a mapping with where, metric, rows, columns, values")
    missing = [k for k in ("where", "metric", "rows", "columns", "values") if k not in spec]
    if missing or not isinstance(spec["values"], dict):
        raise RaygenError(f"{where}: table {spec.get('where', '?')!r} needs where, metric, rows, columns and "
                          f"values ({{row: {{column: number}}}})")
    out = []
    for row, cells in spec["values"].items():
        if not isinstance(cells, dict):
            raise RaygenError(f"{where}: {spec['where']} row {row!r} must map columns to numbers")
        for col, v in cells.items():
            out.append(Published(str(spec["where"]), str(spec["metric"]), _value(v, f"{where}: {spec['where']}"),
                                 {spec["rows"]: row, spec["columns"]: col}, table=str(spec["where"]),
                                 column_key=str(spec["columns"]), ratio_to=spec.get("ratio_to")))
    return out


def parse(block: Any, where: str) -> tuple[str, dict[str, Any], list[Published]]:
    """(citation, protocol, values) of a ``paper:`` block; RaygenError on a malformed one."""
    where = f"{where}: paper"
    if not isinstance(block, dict) or not isinstance(block.get("cite"), str):
        raise RaygenError(f"{where} must be a mapping with cite (the paper), protocol, values and/or tables")
    unknown = sorted(set(block) - {"cite", "protocol", "values", "tables"})
    if unknown:
        raise RaygenError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: cite, protocol, values, tables")
    protocol = block.get("protocol") or {}
    bad = sorted(set(protocol) - set(PROTOCOL_KEYS)) if isinstance(protocol, dict) else ["(not a mapping)"]
    if bad:
        raise RaygenError(f"{where}: protocol keys {', '.join(bad)} unknown; valid: {', '.join(PROTOCOL_KEYS)}")
    values = [_one(v, where) for v in block.get("values") or []]
    for t in block.get("tables") or []:
        values += _table(t, where)
    if not values:
        raise RaygenError(f"{where}: no published values (give values or tables)")
    return block["cite"], dict(protocol), values


def to_json(block: dict[str, Any]) -> dict[str, Any]:
    """The block as the run's metadata stores it: citation, protocol and the flat values."""
    cite, protocol, values = parse(block, "paper")
    return {"cite": cite, "protocol": protocol,
            "values": [{**asdict(v), "value": list(v.value) if v.interval else v.value} for v in values]}


def from_json(meta: Any) -> tuple[str, dict[str, Any], list[Published]] | None:
    """Inverse of ``to_json``; None when absent or unreadable (a report still renders)."""
    if not isinstance(meta, dict) or not isinstance(meta.get("values"), list):
        return None
    out = []
    for v in meta["values"]:
        try:
            value = tuple(v["value"]) if isinstance(v["value"], list) else float(v["value"])
            out.append(Published(**{**v, "value": value}))
        except (TypeError, KeyError, ValueError):
            continue
    return str(meta.get("cite", "")), dict(meta.get("protocol") or {}), out
