"""An equal-budget comparison in the manner of Lucic et al. 2018 ("Are GANs Created Equal?"):
for each model, the held-out score of the configuration a search of k draws would choose
(the best on validation among k of the model's N trials), against k = 1 ... N, with a
bootstrap 95% band; the ranking at each budget, and where two models stop being separable.

Rankings change with the tuning budget, so a fair study gives every model the same budget
and reports this whole curve, not one hand-picked configuration per model.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

ROUNDS = 2000  # bootstrap resamples per budget


@dataclass(frozen=True)
class Curve:
    budgets: list[int]  # k = 1 ... N
    mean: list[float]  # the chosen configuration's held-out score, averaged over resamples
    low: list[float]  # 2.5% and 97.5% quantiles over resamples
    high: list[float]


def _chosen(valid: np.ndarray, held: np.ndarray, idx: np.ndarray, lower: bool) -> np.ndarray:
    """The held-out score of the best-on-validation trial of each row of ``idx`` (R, k); a
    trial without a validation score is never chosen over one with a score."""
    v = valid[idx]
    v = np.where(np.isnan(v), np.inf if lower else -np.inf, v)
    pick = v.argmin(1) if lower else v.argmax(1)
    return held[np.take_along_axis(idx, pick[:, None], 1)[:, 0]]


def best_so_far(valid, held, lower: bool = True, rounds: int = ROUNDS, seed: int = 0) -> Curve:
    """The curve of one model from its trials' validation and held-out scores: for each
    budget k, ``rounds`` draws of k of the N trials without replacement."""
    valid, held = np.asarray(valid, float), np.asarray(held, float)
    rng = np.random.default_rng(seed)
    n = len(valid)
    budgets, mean, low, high = [], [], [], []
    for k in range(1, n + 1):
        idx = np.argsort(rng.random((rounds, n)), axis=1)[:, :k]  # (R, k): k distinct trials per resample
        got = _chosen(valid, held, idx, lower)
        got = got[~np.isnan(got)]
        budgets.append(k)
        mean.append(float(got.mean()) if len(got) else float("nan"))
        lo, hi = (np.quantile(got, [0.025, 0.975]) if len(got) else (float("nan"),) * 2)
        low.append(float(lo))
        high.append(float(hi))
    return Curve(budgets, mean, low, high)


def exact_expectation(valid, held, k: int, lower: bool = True) -> float:
    """The same expectation computed over every subset of k trials (for small N; tests)."""
    valid, held = np.asarray(valid, float), np.asarray(held, float)
    subsets = np.array(list(itertools.combinations(range(len(valid)), k)))
    got = _chosen(valid, held, subsets, lower)
    return float(np.nanmean(got))


def curves(df: pd.DataFrame, group: list[str], metric: str, select: str, lower: bool) -> dict[tuple, Curve]:
    """One curve per group (e.g. model, dataset) of ``df``'s trials: chosen on ``select``,
    scored on ``metric``."""
    out = {}
    for key, g in df.groupby(group, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        out[key] = best_so_far(pd.to_numeric(g[select], errors="coerce"), pd.to_numeric(g[metric], errors="coerce"),
                               lower)
    return out


def ranking(curves_: dict[tuple, Curve], k: int, lower: bool = True) -> list[tuple[tuple, bool]]:
    """The groups in order at budget k (a group whose curve is shorter uses its last point),
    each with whether its band separates it from the next one's (no overlap). At k = N (all of
    a group's trials) its band is one trial's score, which says nothing about the noise of
    another draw or seed: never separable there."""
    def at(c: Curve) -> tuple[float, float, float]:
        i = min(k, len(c.budgets)) - 1
        return c.mean[i], c.low[i], c.high[i]

    def partial(c: Curve) -> bool:
        return k < len(c.budgets)

    order = sorted(curves_, key=lambda g: (np.nan_to_num(at(curves_[g])[0], nan=np.inf) * (1 if lower else -1)))
    out = []
    for a, b in itertools.zip_longest(order, order[1:]):
        if b is None:
            out.append((a, False))
            continue
        (_, alo, ahi), (_, blo, bhi) = at(curves_[a]), at(curves_[b])
        apart = (ahi < blo) if lower else (alo > bhi)
        out.append((a, apart and partial(curves_[a]) and partial(curves_[b])))
    return out


def separable_from(curves_: dict[tuple, Curve], a: tuple, b: tuple) -> int | None:
    """The smallest budget from which on the bands of ``a`` and ``b`` no longer overlap (None: never);
    budgets below both groups' trial counts only (at k = N a band is one trial's score)."""
    ca, cb = curves_[a], curves_[b]
    n = min(len(ca.budgets), len(cb.budgets)) - 1
    apart = [ca.high[i] < cb.low[i] or cb.high[i] < ca.low[i] for i in range(n)]
    for i in range(n):
        if all(apart[i:]):
            return ca.budgets[i]
    return None
