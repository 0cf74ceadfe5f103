"""What the report adds for papers: one module per paper with its sections (``chaturvedula``,
``ko2024``, ``zemouri2020``), each deciding from a run's data whether it applies, and the
generic "Paper vs raygen" comparison of a sweep's published values (``comparison``). The page
asks every section in ``SECTIONS`` and names none of them.
"""
from __future__ import annotations

from raygen.report.papers import chaturvedula, ko2024, lucic2018, zemouri2020
from raygen.report.papers.section import Derived, Section, Subject

# In the order their parts appear where two add to the same place of the page; Lucic et al.
# 2018's equal-budget comparison applies to any sweep with a budget.
SECTIONS: tuple[Section, ...] = (*zemouri2020.SECTIONS, *chaturvedula.SECTIONS, *ko2024.SECTIONS,
                                 *lucic2018.SECTIONS)
# Published metrics computed from trials, and image titles: whichever sections apply.
DERIVED: dict[str, Derived] = {k: v for sec in SECTIONS for k, v in sec.derived.items()}
GALLERY_TITLES: dict[str, str] = {k: v for sec in SECTIONS for k, v in sec.gallery_titles.items()}


def applicable(s: Subject) -> list[Section]:
    return [sec for sec in SECTIONS if sec.applies(s)]
