"""The report's image sections, as HTML with every image base64-embedded: a grid of the same
test images reconstructed by every setting (rows and columns: two swept parameters, which a
paper's section chooses) and a gallery per image column (samples, reconstructions, 2-D latent
scatters, ...), grouped by model.

A missing or unreadable image file is shown as a line of text naming it, never as a
broken ``<img>``.
"""
from __future__ import annotations

import base64
import stat
import struct
from dataclasses import dataclass
from html import escape
from pathlib import Path

import pandas as pd

from raygen.record.keys import Kind
from raygen.report.analysis import OK, Analysis, fmt, fmt_key, fmt_ms, trial_order
from raygen.report.plots import best_index

# Titles of the image columns every model may write; papers' sections add their figures' (in this order).
GALLERY_TITLES = {
    "samples_png": "Samples (64 per trial)",
    "reconstructions_png": "Reconstructions (each test image followed by its reconstruction)",
}
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".jpg": b"\xff\xd8", ".jpeg": b"\xff\xd8"}
MAX_IMAGE_BYTES = 16 << 20  # a trial's grids are ~100 KB; far larger is not one of them
GRID_WIDTH = 250  # px per reconstruction cell: two panels of two columns fit side by side


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, without an imaging library."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    return struct.unpack(">II", data[16:24])


def img_tag(data: bytes, mime: str = "image/png", alt: str = "", width: int | None = None,
            cls: str = "") -> str:
    style = f' style="width:{width}px"' if width else ""
    return (f'<img class="{cls}" alt="{escape(alt)}"{style} '
            f'src="data:{mime};base64,{base64.b64encode(data).decode()}">')


@dataclass(frozen=True)
class RunFiles:
    """Where a report reads images: paths resolve against ``base`` (the run folder), and only
    PNG or JPEG files inside ``roots`` (the run folders reported on) are read. A results file
    names the images, and results files travel between machines: it must not be able to
    make the report embed any other file."""

    base: Path
    roots: tuple[Path, ...]

    def read(self, rel: str) -> bytes | str:
        """The file's bytes, or why it is not embedded."""
        path = (self.base / rel).resolve()
        if not any(path.is_relative_to(r.resolve()) for r in self.roots):
            return f"not embedded (outside the run folder): {rel}"
        if path.suffix.lower() not in MIME:
            return f"not embedded (not an image): {rel}"
        try:
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):  # a FIFO would block the report, a device never end
                return f"not embedded (not a regular file): {rel}"
            if st.st_size > MAX_IMAGE_BYTES:
                return f"not embedded ({st.st_size / 2**20:.0f} MB, over the {MAX_IMAGE_BYTES >> 20} MB cap): {rel}"
            data = path.read_bytes()
        except OSError:
            return f"image missing: {rel}"
        if not data.startswith(MAGIC[path.suffix.lower()]):
            return f"not embedded (not a {path.suffix} file): {rel}"
        if path.suffix.lower() == ".png" and not all(png_size(data) or (0,)):
            return f"not embedded (an empty or damaged PNG): {rel}"
        return data


def embed(files: RunFiles, rel, alt: str, target: int = 300, cls: str = "px") -> str:
    """An ``<img>`` of a trial's image (path relative to the run folder), scaled so small
    grids are readable (whole-number upscaling keeps MNIST pixels crisp); a wide strip
    (e.g. 40 images in 2 rows of 20) gets twice the width, so each image stays legible."""
    if not isinstance(rel, str) or not rel:
        return '<div class="missing">no image</div>'
    data = files.read(rel)
    if isinstance(data, str):
        return f'<div class="missing">{escape(data)}</div>'
    path = Path(rel)
    size = png_size(data)
    width = None
    if size and size[0] >= 3 * size[1]:
        target *= 2
    if size and size[0] < target:  # upscale by a whole factor, staying near the target
        width = size[0] * max(1, round(target / size[0]))
    elif size and size[0] > target:
        width = target
    return img_tag(data, MIME.get(path.suffix.lower(), "image/png"), alt, width, cls)


BAD_STATUS = object()  # the status marker in a caption's parts (bold red), never text from the data


def caption(lay: Analysis, r: pd.Series, params: list[str]) -> str:
    parts = [f"{lay.label(p)}={fmt_key(r[p])}" for p in params if p in r and pd.notna(r[p])]
    if "seed" in r and pd.notna(r["seed"]):
        parts.append(f"seed {fmt_key(r['seed'])}")
    m = lay.primary
    if str(r.get("status")) not in OK:
        parts.append(BAD_STATUS)  # marked here, replaced after escaping
    elif m and pd.notna(r.get(m)):
        parts.append(f"{lay.label(m)} {fmt(r[m])}")
    bold = f'<b class="bad">{escape(str(r.get("status")))}</b>'
    return " · ".join(bold if p is BAD_STATUS else escape(p) for p in parts)


def galleries(lay: Analysis, files: RunFiles, cap: int = 48, titles: dict[str, str] | None = None,
              skip: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    """(anchor, title, html) per image column but ``skip`` (drawn elsewhere), in the order of
    ``titles``: one figure per trial, grouped by model; each model's best trial framed. Above
    ``cap`` trials only the lowest seed of each configuration is shown (the rest are in the
    trial folders)."""
    titles = GALLERY_TITLES if titles is None else titles
    res = trial_order(lay)
    cols = [c for c in lay.of_kind(Kind.IMAGE) if c not in skip and res[c].notna().any()]
    cols.sort(key=lambda c: list(titles).index(c) if c in titles else 99)
    out = []
    for col in cols:
        rows = res[res[col].notna()]
        note = ""
        if len(rows) > cap and "seed" in rows:
            keys = [k for k in lay.keys if k in rows]
            rows = rows.sort_values("seed").groupby(keys, dropna=False, sort=False).head(1) if keys else rows
            rows = trial_order(Analysis(rows, lay.history, keys=lay.keys))
            note = (f'<p class="caption">{len(res[res[col].notna()])} trials: showing the lowest seed of each '
                    f"configuration ({len(rows)}).</p>")
        parts = [note]
        groups = rows.groupby("model", sort=True) if "model" in rows else [("", rows)]
        for model, part in groups:
            model_rows = lay.results[lay.results["model"] == model] if "model" in lay.results else lay.results
            params = lay.swept_in(model_rows)
            best = best_index(lay, model_rows, lay.primary)
            figs = []
            for idx, r in part.iterrows():
                alt = f"{model} {col} {r.get('trial_id', '')}"
                star = idx == best and model_rows[lay.primary].notna().sum() > 1 if lay.primary else False
                mark = "★ best trial · " if star else ""
                figs.append(f'<figure class="{"best" if star else ""}">{embed(files, r[col], alt)}'
                            f'<figcaption>{mark}{caption(lay, r, params)}</figcaption></figure>')
            parts.append(f'<h4>{escape(str(model))}</h4><div class="gallery">{"".join(figs)}</div>')
        out.append((f"img-{col[:-4]}", titles.get(col, col[:-4].replace("_", " ")), "".join(parts)))
    return out


def _scores(trials: pd.DataFrame, by: list[str], metric: str | None) -> dict[tuple, tuple[float, float, int]]:
    """(row value, column value) -> (mean, std, n) of ``metric`` over the ok trials' seeds."""
    ok = trials[trials["status"].isin(OK)]
    if not metric or metric not in ok or not ok[metric].notna().any():
        return {}
    if not by:
        return {(): (ok[metric].mean(), ok[metric].std(), int(ok[metric].notna().sum()))}
    agg = ok.groupby(by, dropna=False)[metric].agg(["mean", "std", "count"])
    return {(k if isinstance(k, tuple) else (k,)): (r["mean"], r["std"], int(r["count"])) for k, r in agg.iterrows()}


def _grid_cell(lay: Analysis, files: RunFiles, trials: pd.DataFrame, image: str, alt: str, stat: tuple | None,
               best: bool) -> str:
    """One setting: the lowest ok seed's reconstruction, its mean metric, and how many seeds failed."""
    trials = trials.sort_values([c for c in ("seed",) if c in trials])
    good = trials[trials["status"].isin(OK) & trials[image].notna()]
    if not len(good):
        if not len(trials):
            return '<td class="missing">not run</td>'
        st = ", ".join(sorted(trials["status"].dropna().astype(str).unique()))
        return f'<td class="badcell"><div class="bad">{escape(st)}</div></td>'
    r = good.iloc[0]
    seed = f"seed {fmt_key(r['seed'])}" if "seed" in r else ""
    bad = trials[~trials["status"].isin(OK)]
    if len(bad):
        seed += f" ({len(bad)} of {len(trials)} {', '.join(sorted(bad['status'].astype(str).unique()))})"
    notes = [f"{lay.label(lay.primary)} {fmt_ms(*stat)}" if stat else "", seed]
    text = ("★ best · " if best else "") + escape(" · ".join(filter(None, notes)))
    return (f'<td class="{"bestcell" if best else ""}">{embed(files, r[image], alt, GRID_WIDTH)}'
            f'<div class="cellnote">{text}</div></td>')


def reconstruction_grids(lay: Analysis, files: RunFiles, image: str, inputs: str, row: str | None,
                         col: str | None) -> str:
    """The same test images (``inputs``, top row) reconstructed by every setting (``image``):
    rows ``row``, columns ``col``, one panel per value of the other keys that vary; the lowest
    seed of each setting; the best setting by the primary metric framed green."""
    res = lay.results
    if image not in res or not res[image].notna().any():
        return ""
    panels = [k for k in lay.keys if k not in (row, col) and res[k].nunique(dropna=False) > 1]
    html = []
    for key, part in (res.groupby(panels, dropna=False, sort=True) if panels else [((), res)]):
        key = key if isinstance(key, tuple) else (key,)
        title = ", ".join(f"{lay.label(k)} = {fmt_key(v)}" for k, v in zip(panels, key)) or "all trials"
        html.append(_panel(lay, files, part, image, inputs, row, col, title))
    return f'<div class="panels">{"".join(html)}</div>'


def _panel(lay: Analysis, files: RunFiles, part: pd.DataFrame, image: str, inputs: str, row: str | None,
           col: str | None, title: str) -> str:
    """One panel of ``reconstruction_grids``: a table of its settings' reconstructions."""
    lower = lay.arrow(lay.primary) == " ↓" if lay.primary else True
    rvals = sorted(part[row].dropna().unique()) if row else [None]
    cvals = sorted(part[col].dropna().unique()) if col else [None]
    scores = _scores(part, [k for k in (row, col) if k], lay.primary)
    best = (min if lower else max)(scores, key=lambda k: scores[k][0]) if len(scores) > 1 else None
    head = "".join(f"<th>{escape(lay.label(col))} = {escape(fmt_key(c))}</th>" if col else "<th>reconstruction</th>"
                   for c in cvals)
    body = []
    shown = part[inputs].dropna() if inputs in part else pd.Series(dtype=str)
    if len(shown):
        body.append(f'<tr class="inputs"><th>input</th><td colspan="{len(cvals)}">'
                    f'{embed(files, shown.iloc[0], "the fixed test inputs", GRID_WIDTH)}</td></tr>')
    for rv in rvals:
        cells = []
        for cv in cvals:
            k = tuple(v for v, p in ((rv, row), (cv, col)) if p)
            sel = part[part[row] == rv] if row else part
            sel = sel[sel[col] == cv] if col else sel
            cells.append(_grid_cell(lay, files, sel, image, f"{row}={rv} {col}={cv}", scores.get(k), k == best))
        rlabel = f"{escape(lay.label(row))} = {escape(fmt_key(rv))}" if row else ""
        body.append(f"<tr><th>{rlabel}</th>{''.join(cells)}</tr>")
    corner = f"{escape(lay.label(row))} \\ {escape(lay.label(col))}" if row and col else ""
    return (f'<div class="panel"><h4>{escape(title)}</h4><table class="imgrid"><tr><th>{corner}</th>'
            f'{head}</tr>{"".join(body)}</table></div>')
