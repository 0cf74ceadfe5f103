"""What a result column means: its label, which direction is better, and whether it can
say which configuration is "best". Declared once, where the column is produced (each
metric family, a model's own measures), written into every ``results.parquet``'s
metadata, and read back by the report, so a report of an old run needs no code from the
run's time. Plain Python: the report imports this without torch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from raygen.record.keys import KINDS, Kind

LOWER, HIGHER = "lower", "higher"


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    better: str | None = None  # LOWER | HIGHER | None (a setting or a count: no direction)
    # Where it stands among the candidates for "best" when a sweep names no metric (lower
    # rank first); None: never "best" (e.g. the evaluator's own accuracy, constant across trials).
    rank: int | None = None
    compare: bool = True  # the report's tables and figures compare configurations by it
    # A value that is best (e.g. the data's own sharpness, 1): ranked by distance to it, not by size
    target: float | None = None
    # What kind of value (``record.keys.Kind``): a measure, or what the measure was taken with
    # (sample counts, the extractor's name).
    kind: str = Kind.METRIC

    @property
    def lower_is_better(self) -> bool | None:
        return None if self.better is None else self.better == LOWER


def to_json(columns: list[Column]) -> list[dict]:
    return [asdict(c) for c in columns]


def from_json(items) -> dict[str, Column]:
    """name -> Column from ``to_json`` output; malformed entries are skipped."""
    out = {}
    for item in items if isinstance(items, list) else []:
        try:
            col = Column(**item)
        except TypeError:
            continue
        if col.better in (LOWER, HIGHER, None) and isinstance(col.name, str) and col.kind in KINDS:
            out[col.name] = col
    return out
