"""What a paper's section of the report is. A section decides from the run's data alone whether
it applies (which models and columns are there, the sweep's ``paper:`` block) and gives the
page what it adds at fixed places; the page asks every registered section and names none.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from raygen.report.analysis import Analysis
from raygen.report.images import RunFiles
from raygen.report.tables import Table


@dataclass(frozen=True)
class Subject:
    """What a section reads: the run's analysis, its per-configuration summary, where its
    images are and the sweep's ``paper:`` block (citation, protocol, values) if it has one."""

    lay: Analysis
    summ: pd.DataFrame
    files: RunFiles | None = None
    paper: tuple | None = None


@dataclass(frozen=True)
class Derived:
    """A published number raygen computes from a group of trials rather than reads from a
    column: the trials that share the value's setting except ``over``, then ``compute(trials,
    metric)`` (None when they cannot tell)."""

    over: str
    compute: Callable[[pd.DataFrame, str], float | None]


class Section:
    """One paper's part of the report; every hook does nothing unless a paper's section overrides it."""

    key: str = ""  # anchor of its own part of the page (``tables`` or ``figure``)
    title: str = ""
    axes: tuple[str, ...] = ()  # swept parameters in the paper's order, first in the "best value" tables
    images: tuple[str, ...] = ()  # image columns its ``figure`` draws (kept out of the galleries)
    gallery_titles: dict[str, str] = {}  # image column -> its gallery's title (whether it applies or not)
    derived: dict[str, Derived] = {}  # published metric -> how raygen computes it

    def applies(self, s: Subject) -> bool:
        return False

    def glance(self, s: Subject) -> list[Table]:
        """Tables at the top of the page; one whose key is a general table's ("best") replaces it."""
        return []

    def headline(self, s: Subject) -> list[str]:
        """Sentences added to the verdict."""
        return []

    def figure_metrics(self, s: Subject) -> list[str] | None:
        """The metrics to draw against the swept parameters (None: the general choice)."""
        return None

    def tables(self, s: Subject) -> list[Table]:
        """Its own part of the page (``key``, ``title``), after the published values; also in Markdown."""
        return []

    def figure(self, s: Subject) -> str:
        """Its own part of the page as HTML, after the figures ("" for none)."""
        return ""
