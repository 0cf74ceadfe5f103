"""Reading a run for the report: its ``results.parquet`` and ``history.parquet`` with the
column declarations in their metadata, or, while a sweep is still running and neither
exists yet, Ray's per-trial ``result.json`` files (rows built by ``raygen.record.rows``, the
same function that writes ``results.parquet``). Several runs can be combined into one.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from raygen.core.errors import RaygenError
from raygen.core.storage import read_parquet
from raygen.record import keys
from raygen.record.columns import Column, from_json
from raygen.record.keys import Kind
from raygen.record.published import Published
from raygen.record.published import from_json as paper_from_json
from raygen.record.rows import META_FILE, label_history, results_frame, stack_history, trial_rows
from raygen.record.transport import with_history


@dataclass
class Run:
    run_dir: Path
    results: pd.DataFrame
    history: pd.DataFrame
    source: str  # where the rows came from, said in the header
    metric: str | None = None  # the sweep's own metric (its best.json), "best" unless --metric says
    columns: dict[str, Column] = field(default_factory=dict)  # declared metric columns
    paper: tuple[str, dict, list[Published]] | None = None  # citation, protocol, published values
    roots: tuple[Path, ...] = ()  # the run folders whose images it may embed (default: run_dir)
    notes: list[str] = field(default_factory=list)  # metric errors every trial shared, said once
    provenance: dict = field(default_factory=dict)  # the command, code and versions that made the run


def is_run(p: Path) -> bool:
    return (p / "results.parquet").exists() or (p / "tuner.pkl").exists() or (p / META_FILE).exists() \
        or any(p.glob("*/result.json"))


def locate(path: str | os.PathLike) -> Path:
    """A run folder, the results.parquet inside one, or a sweep's folder (-> its latest run;
    run folders are named by start time) -> the run folder."""
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".parquet":
        return p.parent
    if p.is_dir() and not is_run(p):
        runs = sorted(c for c in p.iterdir() if c.is_dir() and is_run(c))
        if runs:
            return runs[-1]
        raise RaygenError(f"{p} holds no raygen run (no results.parquet, tuner.pkl or trial folders, nor a run "
                          f"folder inside). Pass e.g. results/gan_vs_vae or results/gan_vs_vae/20250101-120000 "
                          f"(the 'results:' line a sweep prints names it).")
    if p.is_dir():
        return p
    raise RaygenError(f"{p} is neither a run folder, a sweep's folder nor a results.parquet file. Pass e.g. "
                      f"results/gan_vs_vae (its latest run) or results/gan_vs_vae/20250101-120000 "
                      f"(the 'results:' line a sweep prints names it).")


def _read_parquet(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    try:
        return read_parquet(path)
    except Exception as exc:  # a truncated or foreign file: say which and why
        raise RaygenError(f"cannot read {path} ({type(exc).__name__}: {exc}); rebuild it by rerunning the "
                          f"sweep with --resume, or delete it to report from Ray's result.json files") from None


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def sweep_metric(run_dir: Path) -> str | None:
    """The metric the sweep optimised, as its ``best.json`` records it (None for runs still
    going, runs from before it was recorded, or an unreadable file)."""
    best = _json(run_dir / "best.json")
    return best.get("metric") if isinstance(best, dict) else None


def load_run(path: str | os.PathLike) -> Run:
    run_dir = locate(path)
    metric = sweep_metric(run_dir)
    res_path = run_dir / "results.parquet"
    if res_path.exists():
        results, meta = _read_parquet(res_path)
        missing = [c for c in (keys.TRIAL_ID, keys.STATUS) if c not in results]
        if missing and len(results.columns):  # another tool's table: nothing here says which trial is which
            raise RaygenError(f"{res_path} is not a raygen results file (no {' or '.join(missing)} column); give the "
                              f"folder of a run a sweep wrote")
        results.attrs["config_columns"] = meta.get("config_columns", [])
        results.attrs["kinds"] = meta.get("kinds") or {}  # absent in runs written before kinds were
        hist_path = run_dir / "history.parquet"
        history = _read_parquet(hist_path)[0] if hist_path.exists() else pd.DataFrame()
        when = datetime.fromtimestamp(res_path.stat().st_mtime).strftime("%Y-%m-%d %H:%M:%S")
        return Run(run_dir, results, history, f"results.parquet (written {when})", metric,
                   from_json(meta.get("columns")), paper_from_json(meta.get("paper")),
                   notes=[str(n) for n in meta.get("metric_notes") or []], provenance=_dict(meta.get("provenance")))
    results, history = from_result_json(run_dir)
    if len(results):
        src = (f"Ray's per-trial result.json files ({len(results)} trials): results.parquet is not written yet, "
               f"so the sweep is still running or was interrupted; these are partial results")
    else:
        src = "nothing yet: no results.parquet and no trial has reported (is the sweep still starting?)"
    meta = _json(run_dir / META_FILE)
    meta = meta if isinstance(meta, dict) else {}
    results.attrs["kinds"] = meta.get("kinds") or {}  # the declared keys' (the sweep writes it as it starts)
    return Run(run_dir, results, history, src, metric, from_json(meta.get("columns")),
               paper_from_json(meta.get("paper")), provenance=_dict(meta.get("provenance")))


def _dict(v) -> dict:
    return v if isinstance(v, dict) else {}


def _result_lines(path: Path) -> list[dict]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:  # the line being written right now
            continue
        if isinstance(item, dict):
            lines.append(item)
    return lines


def from_result_json(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows from Ray's ``<trial>/result.json`` (one JSON line per reported result), for runs
    whose Parquet files are not written yet. Config values here are the ones the sweep set
    (defaults are not filled in, as results.parquet does)."""
    rows, keys, hist = [], set(), []
    for f in sorted(run_dir.glob("*/result.json")):
        lines, trial = _result_lines(f), f.parent
        error_file = trial / "error.txt"
        if not lines and not error_file.exists():
            continue
        last = lines[-1] if lines else {}
        params = _json(trial / "params.json")  # Ray writes params.json at trial start
        config = last.get("config") or (params if isinstance(params, dict) else {})
        error = None
        if error_file.exists():
            error = error_file.read_text(errors="replace").strip() or "error.txt is empty"
        metrics = with_history({"training_iteration": len(lines), **last},
                               lambda name, t=trial: (t / name).read_bytes() if (t / name).is_file() else None)
        for row, cfg, h in trial_rows(sweep=run_dir.parent.name, run=run_dir.name, trial_dir=trial.name,
                                      config=config, metrics=metrics, error=error,
                                      unfinished="running", logged=pd.DataFrame(lines)):
            rows.append(row)
            keys.update(cfg)
            hist.append(h)
    results = results_frame(rows, keys)
    return results, label_history(stack_history(hist), results)


def check_distinct(runs: list[Run]) -> None:
    dirs = [r.run_dir.resolve() for r in runs]
    twice = sorted({str(d) for d in dirs if dirs.count(d) > 1})
    if twice:
        raise RaygenError(f"run {', '.join(twice)} is given twice; name each run once")


def combine(runs: list[Run], out_dir: Path) -> Run:
    """Several runs as one (a sweep extended by a second run with more β values, say): rows
    and histories stacked, image paths made absolute so the report in ``out_dir`` finds
    them, "best" by the runs' metric when they share one. ``runs`` are distinct (``check_distinct``,
    which ``write_report`` asks before it makes ``out_dir``)."""
    dirs = [r.run_dir.resolve() for r in runs]
    ids = [set(r.results["trial_id"].astype(str)) if "trial_id" in r.results else set() for r in runs]
    clash = len(set().union(*ids)) < sum(map(len, ids))  # then ids become "<run folder>/<id>"
    frames, hists, columns, config, kinds = [], [], {}, set(), {}
    for r in runs:
        res, hist = r.results.copy(), r.history.copy()
        for c in [c for c in res.columns if keys.kind_of(c, r.results.attrs.get("kinds") or {}) == Kind.IMAGE]:
            res[c] = res[c].map(lambda v, d=r.run_dir.resolve(): str(d / v) if isinstance(v, str) and v else v)
        if clash:
            for f in (res, hist):
                if "trial_id" in f:
                    f["trial_id"] = r.run_dir.name + "/" + f["trial_id"].astype(str)
        frames.append(res)
        hists += [hist] if len(hist) else []
        columns.update(r.columns)
        config.update(r.results.attrs.get("config_columns", []))
        kinds.update(r.results.attrs.get("kinds") or {})
    results = pd.concat(frames, ignore_index=True)
    results.attrs["config_columns"] = sorted(config)
    results.attrs["kinds"] = kinds
    history = pd.concat(hists, ignore_index=True) if hists else pd.DataFrame()
    metrics = {r.metric for r in runs}
    source = "; ".join(f"{r.run_dir.parent.name}/{r.run_dir.name}: {r.source}" for r in runs)
    sweeps = sorted({r.run_dir.parent.name for r in runs})
    what = f"{len(runs)} runs combined" if len(sweeps) == 1 else \
        f"{len(runs)} runs of {len(sweeps)} sweeps ({', '.join(sweeps)}) combined"
    papers = {r.paper[0]: r.paper for r in runs if r.paper}
    return Run(out_dir, results, history, f"{what} ({source})",
               metrics.pop() if len(metrics) == 1 else None, columns, next(iter(papers.values())) if papers else None,
               tuple(dirs))
