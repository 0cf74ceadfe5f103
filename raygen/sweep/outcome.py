"""How a sweep ends on the console: notes, the benchmark line, where the results are, the
best configuration in plain words (and ``best.json``), the report, and the exit status with
what to do next when the run is not complete."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import sys

from raygen.core.storage import is_remote, join, write_text
from raygen.sweep.plan import Plan

RESULT_STATUSES = ("completed", "diverged", "stopped")  # a trial that ended in one of these gave its result


def say_results(args, plan: Plan, results, notes: list[str], run_dir: str, line: str) -> None:
    """The end of a sweep on the console: notes, the benchmark line, where the results are,
    the best configuration in plain words (and best.json), the report."""
    from raygen.sweep.callbacks.console import best_words
    from raygen.sweep.collect import best_trial

    for note in notes:
        print(f"note: not measured in any trial: {note}")
    if "restarted" in results:
        for tid, why in results.dropna(subset=["restarted"])[["trial_id", "restarted"]].itertuples(index=False):
            print(f"note: trial {tid} restarted from epoch 0 when resumed: {why}")
    print(line)
    counts = results["status"].value_counts().to_dict() if len(results) else {}
    print(f"results: {join(run_dir, 'results.parquet')}  ({len(results)} trials: {counts})")
    best = best_trial(results, plan.sweep.metric, plan.sweep.mode)
    if best is not None:
        print(best_words(best, plan.keys))
        write_text(join(run_dir, "best.json"), json.dumps(best, indent=2, allow_nan=False))
    if not args.no_report and not is_remote(run_dir):
        _report(run_dir)


def resume_command(args, run_name: str, retry: bool = False) -> str:
    """The command that continues this run, as it must be typed from any folder: this Python,
    the sweep file's absolute path, the storage and data folders and every option that shaped
    the run's plan or its resources."""
    from raygen.core.storage import is_remote

    local = lambda p: p if is_remote(p) else os.path.abspath(os.path.expanduser(p))
    name = args.name
    if os.path.isfile(name):
        name = os.path.abspath(name)
    cmd = [sys.executable, "-m", "raygen.sweep", name, "--resume", run_name, "--storage", local(args.storage)]
    if args.data_root:
        cmd += ["--data-root", local(args.data_root)]
    for flag, value in (("--address", args.address), ("--num-cpus", args.num_cpus),
                        ("--cpus-per-trial", args.cpus_per_trial), ("--gpus-per-trial", args.gpus_per_trial),
                        ("--max-concurrent", args.max_concurrent), ("--stack", args.stack),
                        ("--budget", getattr(args, "budget", None))):
        if value is not None:
            cmd += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    for flag, values in (("--set", args.set), ("--only", getattr(args, "only", []))):
        for v in values:
            cmd += [flag, v]
    cmd += ["--smoke"] * bool(args.smoke) + ["--skip-missing-data"] * bool(args.skip_missing_data)
    cmd += ["--retry-failed"] * retry
    return shlex.join(cmd)


def ending(args, results, run_dir: str, run_name: str, interrupted: bool) -> int:
    """The exit status, with what to do next when the run is not complete."""
    from raygen.sweep.callbacks.runstate import STOPPED

    if not interrupted:
        return exit_status(results, resume_command(args, run_name, retry=True))
    left = int(results["status"].eq("interrupted").sum()) if len(results) else 0
    if run_dir in STOPPED:
        print(f"stopped: {STOPPED[run_dir]}; {left} trial(s) unfinished, the rest written above. Free space "
              f"there, then: {resume_command(args, run_name)}", file=sys.stderr)
        return 1
    print(f"interrupted: {left} trial(s) unfinished, the rest written above. Continue from their last "
          f"checkpoints with: {resume_command(args, run_name)}", file=sys.stderr)
    return 130


def disk_note(base: str, again: str) -> str:
    """``; the disk holding BASE is full ...`` when it is (the usual cause of a failed write),
    with the command (``again``) that finishes the run once there is space."""
    if is_remote(base):
        return ""
    try:
        free = shutil.disk_usage(base).free
    except OSError:
        return ""
    if free >= 2**27:
        return ""
    return f"; the disk holding {base} is full ({free / 2**20:.0f} MB free): free space there, then: {again}"


def exit_status(results, again: str) -> int:
    """0 when every trial gave a result (completed, diverged, or stopped by the scheduler);
    else 1, with the trials that did not and why, and how to retry them."""
    bad = results[~results["status"].isin(RESULT_STATUSES)] if len(results) else results
    if not len(bad):
        return 0
    print(f"error: {len(bad)} of {len(results)} trials gave no result:", file=sys.stderr)
    for (status, error), group in bad.fillna({"error": ""}).groupby(["status", "error"], sort=False):
        ids = ", ".join(group["trial_id"].astype(str).head(3)) + (" ..." if len(group) > 3 else "")
        print(f"  {len(group)} {status} ({ids}){': ' + error if error else ''}", file=sys.stderr)
    print(f"  fix what the errors say, then rerun them: {again}", file=sys.stderr)
    return 1


def _report(run_dir: str) -> None:
    from raygen.report.page import write_report

    try:
        path = write_report(run_dir)
        print(f"report: {path}  (and {os.path.join(os.path.dirname(path), 'report.md')})")
    except Exception as exc:  # a report problem must never lose the results already written
        print(f"warning: report failed ({type(exc).__name__}: {exc}); results are intact", file=sys.stderr)
