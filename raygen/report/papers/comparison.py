"""The paper beside raygen: each published value (the sweep's ``paper:`` block, from the
run's metadata) with raygen's figure for the same setting, and whether the two were
computed the same way. A number computed differently (another feature extractor, other
sample counts, another reference set, training split or epoch count) is labelled so,
never set silently beside the paper's. For printed tables: the rank agreement (Kendall τ)
of the paper's ordering and raygen's; for times on other hardware: ratios, not seconds.
"""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd

from raygen.record.published import Published
from raygen.report.analysis import OK, Analysis, fmt, fmt_key
from raygen.report.papers import DERIVED
from raygen.report.tables import Table

# The paper's metric -> raygen's stand-in when the paper's own could not be measured here.
STAND_INS = {"fid": ("cls_fid", "FID on the domain classifier's features, not Inception's"),
             "inception_score": ("cls_is", "IS from the domain classifier, not Inception")}
SAMPLES_COLUMN = {"fid": "fid_samples", "inception_score": "fid_samples", "cls_fid": "cls_samples",
                  "cls_is": "cls_samples"}
TIME_METRICS = ("train_time_s",)


def t95(df: int) -> float:
    """Student's t quantile for a two-sided 95% interval with ``df`` degrees of freedom (any df)."""
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def interval(values: pd.Series) -> tuple[float, float | None, int]:
    """(mean, standard deviation over seeds or None for one, n)."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return math.nan, None, 0
    return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else None), len(v)


def ci95(mean: float, sd: float | None, n: int) -> str:
    """The 95% t interval of the mean over ``n`` seeds."""
    if sd is None or n < 2:
        return "—"
    half = t95(n - 1) * sd / math.sqrt(n)
    return f"[{fmt(mean - half)}, {fmt(mean + half)}]"


def matching(lay: Analysis, setting: dict) -> pd.DataFrame:
    rows = lay.results[lay.results["status"].isin(OK)] if "status" in lay.results else lay.results
    for k, v in setting.items():
        if k not in rows:
            return rows.iloc[0:0]
        rows = rows[rows[k].map(lambda x, v=v: _same(x, v))]
    return rows


def _same(a, b) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def differences(rows: pd.DataFrame, column: str, protocol: dict) -> list[str]:
    """How raygen's rows were computed differently from the paper's protocol."""
    out = []

    def one(col: str):
        vals = rows[col].dropna().unique() if col in rows else []
        return vals[0] if len(vals) == 1 else (", ".join(map(str, vals)) if len(vals) else None)

    samples = one(SAMPLES_COLUMN.get(column, "eval_samples"))
    if protocol.get("samples") and samples is not None and _number(samples) != protocol["samples"]:
        out.append(f"{fmt(samples)} samples (paper: {protocol['samples']:,})")
    for key, col in (("reference", "eval_split"), ("train_split", "train_split")):
        got = one(col)
        if protocol.get(key) and got is not None and str(got) != str(protocol[key]):
            out.append(f"{key.replace('_', ' ')} {got} (paper: {protocol[key]})")
    epochs = one("epochs")
    if protocol.get("epochs") and epochs is not None and _number(epochs) != protocol["epochs"]:
        out.append(f"{fmt_key(epochs)} epochs (paper: {protocol['epochs']})")
    batches = one("max_batches")
    if batches not in (None, 0) and _number(batches):
        out.append(f"only {fmt_key(batches)} batches per epoch (a smoke run)")
    return out


def _number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def raygen_value(lay: Analysis, summ: pd.DataFrame, pub: Published) -> tuple[str, float | None, int, list[str]]:
    """(column used, raygen's value or None, trials, reasons it is not comparable)."""
    derived = DERIVED.get(pub.metric)  # e.g. a threshold on β, from the trials of every β
    if derived:
        trials = matching(lay, {k: v for k, v in pub.setting.items() if k != derived.over})
        value = derived.compute(trials, pub.metric)
        return pub.metric, value, trials["seed"].nunique() if value is not None and "seed" in trials else 0, []
    rows = matching(lay, pub.setting)
    column, reasons = (lay.time_col if pub.metric in TIME_METRICS else pub.metric), []
    if (column not in rows or rows[column].isna().all()) and column in STAND_INS:
        column, why = STAND_INS[column]
        reasons.append(why)
    if column not in rows or rows[column].isna().all():
        return column, None, 0, reasons
    mean, _, n = interval(rows[column])
    return column, mean, n, reasons


def _cell(mean: float | None, half: float | None) -> str:
    if mean is None or not np.isfinite(mean):
        return "not measured"
    return f"{fmt(mean)} ± {fmt(half)}" if half else fmt(mean)


def _paper_cell(pub: Published) -> str:
    if pub.interval:
        return f"[{fmt_key(pub.value[0])}, {fmt_key(pub.value[1])}]"
    return f"{pub.value:g}" + (f" ± {pub.std:g}" if pub.std is not None else "")  # as printed


def comparison_table(lay: Analysis, summ: pd.DataFrame, cite: str, protocol: dict, values: list[Published]) -> Table:
    rows, bad = [], set()
    for i, pub in enumerate(values):
        column, mean, n, reasons = raygen_value(lay, summ, pub)
        match = matching(lay, pub.setting)
        sd = interval(match[column])[1] if column in match and not pub.interval else None
        if pub.metric not in TIME_METRICS and pub.metric not in DERIVED:
            reasons += differences(match, column, protocol)
        ratio_paper, ratio_ours = ratios(lay, values, pub)
        if pub.metric in TIME_METRICS:
            reasons.append(f"hardware differs (paper: {protocol.get('hardware', 'not stated')}): compare the ratios")
        if mean is None:
            verdict = "not measured in this run"
        elif reasons and reasons[0] in (w for _, w in STAND_INS.values()):
            verdict = "not comparable: " + "; ".join(reasons)
        elif reasons:
            verdict = "differs: " + "; ".join(reasons)
        else:
            verdict = "same protocol"
        if pub.interval and mean is not None:
            inside = pub.value[0] <= mean <= pub.value[1]
            verdict = ("inside" if inside else "outside") + " the paper's interval; " + verdict
        if mean is not None and unhealthy(lay, pub.setting):
            why = matching(lay, pub.setting)["health_reason"].dropna().astype(str)
            verdict = f"failed to train ({why.iloc[0] if len(why) else 'health check'}): no agreement; " + verdict
        setting = ", ".join(f"{lay.label(k)}={fmt_key(v)}" for k, v in pub.setting.items())
        row = {"source": pub.where, "setting": setting, "metric": lay.label(pub.metric), "paper": _paper_cell(pub),
               "raygen": _cell(mean, sd) + (f" ({lay.label(column)})" if column != pub.metric and n else ""),
               "95% interval": ci95(mean, sd, n) if mean is not None else "—", "seeds": n, "comparable?": verdict}
        if ratio_paper is not None:
            row["paper"] += f" ({ratio_paper:.2f}× {pub.ratio_to})"
            row["raygen"] += f" ({ratio_ours:.2f}× {pub.ratio_to})" if ratio_ours is not None else ""
        if pub.note:
            row["comparable?"] += f" (note: {pub.note})"
        if verdict.startswith(("not comparable", "outside")):
            bad.add((i, "comparable?"))
        rows.append(row)
    caption = (f"Published values of {cite} beside raygen's for the same setting: mean ± standard deviation "
               "over seeds (as the papers print theirs) and the 95% t interval of raygen's mean. 'Same protocol' "
               "means the extractor, sample count, reference set, training split and epochs the paper states all "
               "match; anything else is said. Times on other hardware: compare the ratios.")
    return Table("paper", f"Paper vs raygen: {cite}", pd.DataFrame(rows), caption, bad_cells=bad)


def ratios(lay: Analysis, values: list[Published], pub: Published) -> tuple[float | None, float | None]:
    """This cell over its table row's ``ratio_to`` cell, for the paper and for raygen."""
    if not pub.ratio_to or pub.table is None:
        return None, None
    ref_setting = {**pub.setting, pub.column_key: pub.ratio_to}
    ref = next((v for v in values if v.table == pub.table and v.setting == ref_setting), None)
    if ref is None or ref.interval or pub.interval:
        return None, None
    column = lay.time_col if pub.metric in TIME_METRICS else pub.metric
    ours, base = (interval(matching(lay, s).get(column, pd.Series(dtype=float)))[0]
                  for s in (pub.setting, ref_setting))
    return pub.value / ref.value, (ours / base if np.isfinite(ours) and np.isfinite(base) and base else None)


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's τ-a of two orderings of the same items (ties count as neither)."""
    pairs = list(combinations(range(len(a)), 2))
    s = sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i, j in pairs)
    return float(s / len(pairs)) if pairs else math.nan


def rank_table(lay: Analysis, summ: pd.DataFrame, values: list[Published]) -> Table | None:
    """Per printed table and row (e.g. Table 3, Fashion-MNIST): Kendall τ between the paper's
    ordering of the columns (models) and raygen's, over those raygen measured."""
    rows = []
    tables = {(v.table, v.metric) for v in values if v.table and v.metric not in TIME_METRICS}
    for table, _metric in sorted(tables):
        cells = [v for v in values if v.table == table and not v.interval]
        row_key = next(k for k in cells[0].setting if k != cells[0].column_key)
        for row_value in sorted({v.setting[row_key] for v in cells}, key=str):
            paper, ours, used, sound = [], [], set(), []
            for v in (c for c in cells if c.setting[row_key] == row_value):
                column, mean, _, _ = raygen_value(lay, summ, v)
                if mean is not None and np.isfinite(mean):
                    paper.append(v.value)
                    ours.append(mean)
                    used.add(column)
                    sound.append(not unhealthy(lay, v.setting))
            if len(paper) >= 3:
                kept = [i for i, ok in enumerate(sound) if ok]
                without = (f"{kendall_tau([paper[i] for i in kept], [ours[i] for i in kept]):+.2f} "
                           f"({len(kept)})" if len(kept) >= 3 else "—")
                rows.append({"source": table, lay.label(row_key): fmt_key(row_value),
                             "raygen column": ", ".join(sorted(used)), "columns ranked": len(paper),
                             "Kendall τ": f"{kendall_tau(paper, ours):+.2f}",
                             "τ without failed trainings": without if not all(sound) else "(none failed)"})
    if not rows:
        return None
    return Table("paper-ranks", "Rank agreement with the paper", pd.DataFrame(rows),
                 "Kendall τ between the paper's ordering and raygen's over the cells raygen measured: +1 the same "
                 "order, 0 unrelated, -1 reversed. Computed on raygen's stand-in column where the paper's metric "
                 "could not be measured here (see 'comparable?' above). A model whose training failed its health "
                 "check (metrics/health.py: collapse, a saturated discriminator, no better than the mean image) "
                 "is no agreement: τ without those is beside it (number of columns ranked in brackets).")


def unhealthy(lay: Analysis, setting: dict) -> bool:
    """Did every trial matching a published value's setting fail its training-health check?"""
    rows = matching(lay, setting)
    return "health" in rows and len(rows) > 0 and bool(rows["health"].eq("failed").all())


def paper_tables(lay: Analysis, summ: pd.DataFrame, paper) -> list[Table]:
    if not paper:
        return []
    cite, protocol, values = paper
    return [t for t in (comparison_table(lay, summ, cite, protocol, values), rank_table(lay, summ, values)) if t]
