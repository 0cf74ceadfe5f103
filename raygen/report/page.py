"""The report page: ``report.html`` (one self-contained file: every image and plot
embedded, no scripts, opens anywhere) and ``report.md`` (the tables), built from a run
read by ``run.py``. No Ray and no torch: this runs wherever pandas, pyarrow and
matplotlib do.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path

from raygen.core.errors import RaygenError
from raygen.core.storage import atomic_write
from raygen.report import plots as figs
from raygen.report.analysis import DASH, Analysis, analyze, summarize
from raygen.report.images import GALLERY_TITLES, RunFiles, galleries, img_tag
from raygen.report.papers import GALLERY_TITLES as PAPER_GALLERY_TITLES
from raygen.report.papers import Section, Subject, applicable
from raygen.report.papers.comparison import paper_tables
from raygen.report.run import Run, check_distinct, combine, load_run
from raygen.report.tables import (
    Table,
    best_param_tables,
    best_per_model_table,
    header_facts,
    problems_table,
    summary_table,
    trials_table,
)
from raygen.report.verdict import Verdict, verdict

# --- the page -------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1d2430;
     background:#eef0f3}
main{max-width:1480px;margin:0 auto;padding:20px 36px 60px;background:#fff;min-height:100vh}
h1{font-size:26px;margin:4px 0 2px}
h2{font-size:20px;border-bottom:2px solid #dfe3e8;padding-bottom:4px;margin:34px 0 8px}
h3{font-size:16px;margin:20px 0 4px} h4{font-size:14px;margin:16px 0 6px;color:#37414f}
nav{font-size:13px;margin:6px 0 14px;color:#5b6573} nav a{margin-right:12px;color:#1f5fa8;text-decoration:none}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:1px 18px;font-size:13px;margin:10px 0}
.facts dt{color:#5b6573} .facts dd{margin:0}
.verdict{background:#eaf6ec;border-left:6px solid #2e7d32;padding:10px 16px;font-size:17px;margin:12px 0}
.verdict p{margin:4px 0} .verdict.bad{background:#fdecec;border-left-color:#c62828}
.banner{background:#fff4d6;border:2px solid #e0a800;padding:8px 14px;font-weight:600;margin:8px 0}
.warnbox{background:#fdecec;border-left:6px solid #c62828;padding:8px 14px}
table{border-collapse:collapse;margin:6px 0 2px;font-size:13px}
th,td{padding:4px 10px;border-bottom:1px solid #e3e6ea;white-space:nowrap;vertical-align:top}
th{background:#f0f2f5;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
td.wrap{white-space:normal;min-width:260px;max-width:620px}
tr.best td{background:#dff2e3} tr.best td:first-child{box-shadow:inset 4px 0 #2e7d32} td.top{font-weight:700}
tr.failed td{background:#fdecec;color:#8a1c1c} tr.diverged td{background:#fff3e0;color:#7a4a00}
tr.warn td{background:#fffbe6}
.caption{color:#5b6573;font-size:12.5px;margin:2px 0 10px;max-width:1100px}
.scroll{overflow-x:auto}
.gallery{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0;padding:6px;border:2px solid transparent;border-radius:6px;background:#fafbfc}
figure.best{border-color:#2e7d32;background:#eaf6ec}
figcaption{font-size:12px;color:#37414f;max-width:320px}
img.px{image-rendering:pixelated} img.plot{max-width:100%}
.panels{display:flex;flex-wrap:wrap;gap:8px 28px;align-items:flex-start}
table.imgrid td{text-align:center;padding:6px;border:1px solid #e3e6ea}
table.imgrid th{text-align:center;vertical-align:middle}
td.bestcell{background:#dff2e3;outline:3px solid #2e7d32;outline-offset:-3px}
.cellnote{font-size:11.5px;color:#37414f} .bad{color:#c62828;font-weight:600} .missing{color:#8a1c1c;font-size:12px}
"""


def _is_num(text: str) -> bool:
    t = text.replace(",", "").replace("±", " ").replace(" M", "").replace(" k", "").split()
    return bool(t) and all(_float(x) for x in t)


def _float(x: str) -> bool:
    try:
        float(x)
        return True
    except ValueError:
        return x == DASH


def anchor(key: str) -> str:
    """An HTML id from a key that may hold a column name from the results file."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(key))


def table_html(t: Table, title: bool = True) -> str:
    if not len(t.frame):
        return ""
    cols = list(t.frame.columns)
    numeric = {c for c in cols if all(_is_num(str(v)) for v in t.frame[c])}
    head = "".join(f"<th>{escape(str(c))}</th>" for c in cols)
    body = []
    for i, row in enumerate(t.frame.itertuples(index=False)):
        cls = " ".join(filter(None, ["best" if i in t.best_rows else "",
                                     t.row_class[i] if i < len(t.row_class) else ""]))
        cells = []
        for c, v in zip(cols, row):
            kind = ["num" if c in numeric else "", "top" if (i, c) in t.best_cells else "",
                    "bad" if (i, c) in t.bad_cells else "",
                    "wrap" if c in ("error", "best configuration") else ""]
            cells.append(f'<td class="{" ".join(filter(None, kind))}">{escape(str(v))}</td>')
        body.append(f'<tr class="{cls}">{"".join(cells)}</tr>')
    cap = f'<p class="caption">{escape(t.caption)}</p>' if t.caption else ""
    h3 = f'<h3 id="{anchor(t.key)}">{escape(t.title)}</h3>' if title else ""
    return (f'{h3}<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>{cap}')


def table_md(t: Table) -> str:
    if not len(t.frame):
        return ""
    cols = list(t.frame.columns)

    def cell(i: int, c: str, v) -> str:
        s = str(v).replace("|", "\\|").replace("\n", " ")
        s = f"**{s}**" if (i, c) in t.best_cells else s
        s = f"✗ {s}" if (i, c) in t.bad_cells else s
        return ("★ " + s) if i in t.best_rows and c == cols[0] else s

    lines = [f"### {t.title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(i, c, v) for c, v in zip(cols, row)) + " |"
              for i, row in enumerate(t.frame.itertuples(index=False))]
    return "\n".join(lines + ([""] + [t.caption] if t.caption else []) + [""])


def plot_html(data: bytes | None, alt: str) -> str:
    return img_tag(data, "image/png", alt, cls="plot") if data else ""


@dataclass
class Contents:
    """Everything the page and the Markdown file show, computed once."""

    facts: list[tuple[str, str]]
    verdict: Verdict
    glance: list[Table]
    problems: Table
    published: list[Table]  # the paper's values beside raygen's (the sweep's paper: block)
    paper: list[tuple[str, str, list[Table]]]  # (anchor, title, tables) of each paper's section that has some
    configs: Table | None
    trials: Table
    plots: list[tuple[str, str, bytes]]  # (anchor, title, PNG)
    figures: list[tuple[str, str, str]]  # (anchor, title, HTML) of each paper's section that draws one
    galleries: list[tuple[str, str, str]]  # (anchor, title, HTML)

    @property
    def sweep(self) -> str:
        return next((v for k, v in self.facts if k == "sweep"), DASH)


def contents(run: Run, metric: str | None = None) -> Contents:
    """"Best" is ``metric``, else the sweep's own metric when the run measured it, else the
    first measured by the declared ranks."""
    lay: Analysis = analyze(run.results, run.history, metric, run.columns)
    if metric is None and run.metric in lay.metrics:
        lay = replace(lay, primary=run.metric)
    summ = summarize(lay)
    files = RunFiles(run.run_dir, run.roots or (run.run_dir,))
    s = Subject(lay, summ, files, run.paper)
    own = applicable(s)
    said = verdict(lay, summ)
    said.lines += [line for sec in own for line in sec.headline(s)]
    said.notes = list(run.notes)
    titles = {**GALLERY_TITLES, **PAPER_GALLERY_TITLES}
    return Contents(header_facts(lay, run.run_dir, run.source, run.notes, run.provenance), said,
                    glance(s, own), problems_table(lay), paper_tables(lay, summ, run.paper),
                    [(sec.key, sec.title, t) for sec in own if (t := sec.tables(s))],
                    summary_table(lay, summ) if len(summ) else None, trials_table(lay), plots(s, own),
                    [(sec.key, sec.title, h) for sec in own if (h := sec.figure(s))],
                    galleries(lay, files, titles=titles, skip=tuple(c for sec in own for c in sec.images)))


def glance(s: Subject, own: list[Section]) -> list[Table]:
    """The papers' tables first; then each model's best and each parameter's best value (the
    papers' parameters first), but those a paper's table of the same key replaces."""
    if not len(s.summ):
        return []
    tables = [t for sec in own for t in sec.glance(s)]
    first = tuple(dict.fromkeys(a for sec in own for a in sec.axes))
    general = [best_per_model_table(s.lay, s.summ), *best_param_tables(s.lay, s.summ, first=first)]
    return tables + [t for t in general if t.key not in {p.key for p in tables}]


def plots(s: Subject, own: list[Section]) -> list[tuple[str, str, bytes]]:
    """(anchor, title, PNG) of each figure the run has data for."""
    lay, summ = s.lay, s.summ
    focus = next((m for sec in own if (m := sec.figure_metrics(s)) is not None), None)
    out = [(f"fig-{p}", f"Metrics against {lay.label(p)}", figs.metric_vs_param(lay, summ, p, focus))
           for p in lay.swept]
    out += [("fig-pareto", "Quality against training time (Pareto view)", figs.pareto(lay, summ)),
            ("fig-loss", "Training loss per epoch: each model's own objective (not comparable across "
                         "models), averaged over the epoch's batches", figs.loss_curves(lay))]
    return [p for p in out if p[2]]


def sections(c: Contents) -> list[tuple[str, str, str]]:
    """(anchor, title, HTML) of each section of the page, in order."""
    box = "verdict bad" if c.verdict.bad else "verdict"
    notes = "".join(f'<p class="caption">Not measured in any trial: {escape(n)}</p>' for n in c.verdict.notes)
    out = [("glance", "At a glance", f'<div class="{box}">' + "".join(f"<p>{escape(s)}</p>" for s in c.verdict.lines)
            + "</div>" + notes + "".join(table_html(t) for t in c.glance))]
    if len(c.problems.frame):
        out.append(("problems", c.problems.title, '<div class="warnbox">' + table_html(c.problems, title=False)
                    + "</div>"))
    if c.published:
        out.append(("published", "Paper vs raygen", "".join(map(table_html, c.published))))
    out += [(key, title, "".join(map(table_html, tables))) for key, title, tables in c.paper]
    if c.plots:
        out.append(("figures", "Figures", "".join(f'<h3 id="{anchor(k)}">{escape(t)}</h3>{plot_html(d, t)}'
                                                  for k, t, d in c.plots)))
    out += c.figures
    out += c.galleries
    if c.configs is not None:
        out.append(("configurations", c.configs.title, table_html(c.configs, title=False)))
    out.append(("trials", f"Every trial ({len(c.trials.frame)})",
                table_html(c.trials, title=False) or "<p>No trials yet.</p>"))
    return out


def html_page(c: Contents) -> str:
    parts = sections(c)
    nav = "".join(f'<a href="#{anchor(k)}">{escape(t.split(" (")[0])}</a>' for k, t, _ in parts)
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in c.facts)
    body = "".join(f'<section><h2 id="{anchor(k)}">{escape(t)}</h2>{h}</section>' for k, t, h in parts)
    title = escape(c.sweep)
    banner = f'<div class="banner">{escape(c.verdict.banner)}</div>' if c.verdict.banner else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>raygen report: {title}'
            f'</title><meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f'<body><main><h1>raygen report: {title}</h1>{banner}<dl class="facts">{dl}</dl><nav>{nav}</nav>'
            f"{body}</main></body></html>")


def markdown(c: Contents) -> str:
    md = [f"# raygen report: {c.sweep}", ""] + ([f"**{c.verdict.banner}**", ""] if c.verdict.banner else [])
    md += [f"- **{k}**: {v}" for k, v in c.facts] + ["", "## At a glance", ""]
    md += [f"> {s}" for s in c.verdict.lines] + [""]
    md += [f"Not measured in any trial: {n}" for n in c.verdict.notes] + ([""] if c.verdict.notes else [])
    paper = [t for _, _, tables in c.paper for t in tables]
    tables = [*c.glance, c.problems, *c.published, *paper, *([c.configs] if c.configs is not None else []), c.trials]
    md += [table_md(t) for t in tables]
    md += ["Figures and images: see report.html beside this file."]
    return "\n".join(md) + "\n"


def build(run: Run, metric: str | None = None) -> tuple[str, str]:
    """(html, markdown) for one run."""
    c = contents(run, metric)
    return html_page(c), markdown(c)


def combined_dir(runs) -> Path:
    """``<the first run's sweep folder>/combined-<run>+<run>...``: one folder per set of runs, so
    a report of other runs never overwrites it (a long list is shortened to a digest)."""
    names = "+".join(sorted(f"{r.run_dir.parent.name}.{r.run_dir.name}" if r.run_dir.parent != runs[0].run_dir.parent
                            else r.run_dir.name for r in runs))
    if len(names) > 120:
        names = f"{len(runs)}-runs-{hashlib.sha1(names.encode()).hexdigest()[:10]}"
    return runs[0].run_dir.parent / f"combined-{names}"


def write_report(run_dir: str | os.PathLike | list, metric: str | None = None,
                 out: str | os.PathLike | None = None) -> Path:
    """Write ``report.html`` and ``report.md`` into the run folder (several runs: into
    ``out``, default ``combined_dir``); returns the HTML path.
    With another ``metric`` and no ``out``: ``report-by-<metric>.html`` beside the run's own
    report, which stays as the sweep wrote it."""
    paths = list(run_dir) if isinstance(run_dir, (list, tuple)) else [run_dir]
    runs = [load_run(p) for p in paths]
    if len(runs) == 1 and out is None:
        run = runs[0]
    else:
        check_distinct(runs)  # before its folder is made
        out_dir = Path(out).expanduser() if out is not None else combined_dir(runs)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file of that name, a read-only or absent parent
            given = f"--out {out_dir}" if out is not None else f"the combined report's folder {out_dir}"
            raise RaygenError(f"{given}: cannot make it ({exc.strerror or exc}); give --out a folder that can be "
                              f"created") from None
        run = combine(runs, out_dir)
    html, md = build(run, metric)
    stem = f"report-by-{re.sub(r'[^A-Za-z0-9_.-]', '_', metric)}" if metric and len(runs) == 1 and out is None \
        else "report"
    out = run.run_dir / f"{stem}.html"
    for path, text in ((out, html), (run.run_dir / f"{stem}.md", md)):
        try:
            atomic_write(path, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
        except OSError as exc:  # a read-only copy of a run, a full disk
            raise RaygenError(f"cannot write the report into {run.run_dir} ({exc.strerror or exc}); give --out a "
                              f"folder that can be written") from None
    return out
