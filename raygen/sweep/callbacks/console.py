"""What a sweep prints: one status table (model, swept values, the sweep's metric), one line
per finished, failed or diverged trial, and nothing else unless ``-v`` asks for Ray's own
output (its tables and result boxes, its warnings, the workers' prints).

On a terminal the table is redrawn in place, cut to the terminal's height and width (a line
that wraps, or a table taller than the screen, would leave stale pieces in the scrollback);
lines said while it is drawn (``say``: a stop, a stalled trial) go above it and stay. Into a
file or a pipe it is a progress line every ``every_s`` seconds instead, so a log holds one
line per trial and a few more. The progress line carries the elapsed time and an estimate of
what is left (from the trials finished so far).
"""
from __future__ import annotations

import logging
import re
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from ray.tune import Callback

from raygen.core.values import number
from raygen.record import keys
from raygen.record.rows import status_of
from raygen.record.transport import given_config, members, stack_of

CLEAR_LINE = "\x1b[2K"
UP = "\x1b[1A"
ACTIVE: list[Console] = []  # the sweep's console while it runs: ``say`` writes above its table


def say(line: str, stream: TextIO | None = None, sticky: bool = False) -> None:
    """A line for the person watching, above the live table (which the next redraw puts back
    below it), so neither hides the other; ``sticky``: also kept at the table's top (a stop in
    progress) until the sweep ends."""
    out = stream or sys.stdout
    for console in ACTIVE:
        if sticky:
            console.note = line
        if console._busy:  # a signal handler, run between two steps of a draw: said once the draw is whole
            console._pending.append((line, out))
            return
        console._erase()
    out.write(line + "\n")
    out.flush()


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.4 h``: as precise as a person needs for a wait."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def quiet_ray(verbose: bool) -> None:
    """Ray's loggers at ERROR (trial failures: raygen says them, once, in a line) unless -v."""
    if not verbose:
        logging.getLogger("ray").setLevel(logging.ERROR)
        logging.getLogger("ray.tune").setLevel(logging.CRITICAL)


def fmt(value: Any) -> str:
    """A number as a person reads it: 4 significant digits, integers as integers."""
    return number(value, whole=True)


def label(config: dict[str, Any], names: list[str]) -> str:
    """One trial (or stack member) as the console names it: its model and swept values."""
    return "  ".join(f"{k}={fmt(config[k])}" if k != "model" else str(config[k]) for k in names if k in config)


def best_words(best: dict[str, Any], names: list[str]) -> str:
    """``best (min cls_fid): vae_conv  latent_dim=10  seed=1: cls_fid 45.21 (trial ...)``: the
    configuration said by the keys that tell the sweep's trials apart."""
    metric = best["metric"]
    seeds = best.get("over_seeds")
    config = {k: best[k] for k in names if best.get(k) is not None and not (seeds and k == "seed")}
    model = config.pop("model", None)
    named = "  ".join([*([str(model)] if model else []), *(f"{k}={fmt(v)}" for k, v in config.items())])
    named = named or "the one configuration"
    if seeds:  # the configuration by its mean over seeds, as the report's verdict: not the luckiest seed
        spread = f" ± {fmt(seeds['std'])}" if seeds.get("std") is not None else ""
        return (f"best ({best['mode']} {metric}, mean over {seeds['seeds']} seeds): {named}: {metric} "
                f"{fmt(seeds['mean'])}{spread}; its best seed {fmt(best.get('seed'))}: {fmt(best[metric])} "
                f"(trial {best[keys.TRIAL_ID]})")
    return f"best ({best['mode']} {metric}): {named}: {metric} {fmt(best[metric])} (trial {best[keys.TRIAL_ID]})"


def trial_name(config: dict[str, Any], names: list[str]) -> str:
    """The swept keys' values; a stacked trial's as ``seed=0,1,2`` where its members differ."""
    configs = [given_config(m) for m in stack_of(config) or [config]]

    def value(k: str) -> str:
        return ",".join(dict.fromkeys(fmt(m[k]) if k != "model" else str(m[k]) for m in configs if k in m))

    return "  ".join(f"{k}={value(k)}" if k != "model" else value(k) for k in names if k in configs[0])


def trial_folder(names: list[str], trial) -> str:
    """A trial's folder named as the console names it, after Ray's id (unique):
    ``a1b2c_00003_vae_conv_seed=1_latent_dim=10`` rather than ``GenerativeTrainable_a1b2c_00003_3_<date>``."""
    slug = re.sub(r"[^A-Za-z0-9_.,=+-]+", "_", trial_name(trial.config, names)).strip("_")
    return f"{trial.trial_id}_{slug}"[:120]


STATES = {"TERMINATED": "done", "ERROR": "failed"}  # Ray's trial states in the words of the rest


def error_of(trial) -> str:
    """Why a trial failed: Ray's error file beside the driver's copy of the trial (written
    before this callback; the pickled error reaches storage only later)."""
    path = getattr(trial, "error_file", None)
    try:
        text = Path(path).read_text(errors="replace").strip() if path else ""
    except OSError:
        text = ""
    if not text and hasattr(trial, "get_error"):
        err = trial.get_error()
        text = str(err) if err is not None else ""
    return text or "the trial failed (no message)"


class Console(Callback):
    """The sweep's console: ``keys`` name each trial, ``metric``/``mode`` say how it did."""

    def __init__(self, keys: list[str], metric: str, total: int, stream: TextIO | None = None,
                 live: bool | None = None, every_s: float = 60.0):
        self.keys, self.metric, self.total = keys, metric, total
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.every_s, self._last, self._drawn, self._done = every_s, time.monotonic(), 0, 0
        self.trials: dict[str, Any] = {}
        self.note: str | None = None  # a stop in progress: said at the table's top until the end
        self._t0 = time.monotonic()
        self._busy, self._pending = False, []

    def __getstate__(self):  # pickled with the run's config (tuner.pkl): not the stream
        return {**self.__dict__, "stream": None, "trials": {}}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.stream = sys.stdout
        self.live = self.stream.isatty()
        self.note, self._t0, self._drawn = None, time.monotonic(), 0
        self._busy, self._pending = False, []

    # --- what a trial is -------------------------------------------------------------
    def name(self, trial) -> str:
        return trial_name(trial.config, self.keys)

    def metric_text(self, res: dict) -> str | None:
        """The sweep's metric; a stack's as its members' range."""
        vals = [m[self.metric] for m in members(res) or [res] if m and isinstance(m.get(self.metric), (int, float))]
        if not vals:
            return None
        return f"{self.metric} {fmt(min(vals))}" + (f" to {fmt(max(vals))}" if len(vals) > 1 else "")

    def outcome(self, trial, error: str | None = None) -> str:
        res = dict(trial.last_result or {})
        status, err = status_of(res, error, keys.STOPPED)
        epoch = res.get(keys.EPOCH)
        parts = [self.metric_text(res),
                 f"epoch {epoch}" if epoch else None,
                 f"{res['time_total_s']:.1f} s" if isinstance(res.get("time_total_s"), float) else None]
        text = ", ".join(p for p in parts if p)
        return f"{status:<9} {self.name(trial)}" + (f"  {text}" if text else "") + (f": {err}" if err else "")

    # --- Ray Tune's hooks ------------------------------------------------------------
    def setup(self, **info):
        self._t0 = time.monotonic()
        ACTIVE[:] = [self]

    def on_trial_start(self, iteration, trials, trial, **info):
        self.trials[trial.trial_id] = trial

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finished(trial, None)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finished(trial, error_of(trial))

    def on_step_end(self, iteration, trials, **info):
        now = time.monotonic()
        if now - self._last < (1.0 if self.live else self.every_s):
            return
        self._last = now
        with self._drawing():
            if self.live:
                self._redraw(trials)
            else:
                self._say(self.progress(trials))

    def on_experiment_end(self, trials, **info):
        with self._drawing():
            self._erase()
        ACTIVE[:] = []

    # --- drawing ---------------------------------------------------------------------
    @contextmanager
    def _drawing(self):
        """Writes that must not be cut: Ctrl-C's handler runs between any two bytecodes of this
        thread, and a line it said between a table's write and its count (``_drawn``) made the next
        erase miss the table's top and take the said line instead; it waits here till the draw is whole."""
        self._busy = True
        try:
            yield
        finally:
            self._busy = False
            while self._pending:
                line, out = self._pending.pop(0)
                self._erase()
                out.write(line + "\n")
                out.flush()

    def _finished(self, trial, error: str | None) -> None:
        self._done += 1
        with self._drawing():
            self._erase()
            width = len(str(self.total))
            self._say(f"[{self._done:>{width}}/{self.total}] {self.outcome(trial, error)}")

    def progress(self, trials) -> str:
        counts: dict[str, int] = {}
        for t in trials:
            state = STATES.get(t.status, t.status.lower())
            counts[state] = counts.get(state, 0) + 1
        states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        elapsed = time.monotonic() - self._t0
        left = self.total - self._done
        eta = f", about {duration(elapsed / self._done * left)} left" if self._done and left > 0 else ""
        return f"progress: {self._done}/{self.total} finished; {states}; {duration(elapsed)} in{eta}"

    def table(self, trials, height: int = 32, width: int = 10**6) -> list[str]:
        """The status table: a row per running or pending trial (running first), finished
        ones counted; the loss until the sweep's metric is known (it often comes at the end);
        at most ``height`` lines, none wider than ``width``."""
        cols = ("status", "trial", "epoch", keys.LOSS) + ((self.metric,) if self.metric != keys.LOSS else ())
        rows = [cols]
        order = {"RUNNING": 0, "PAUSED": 1, "PENDING": 2}
        for t in sorted((t for t in trials if t.status in order), key=lambda t: order[t.status]):
            res = t.last_result or {}
            rows.append((t.status.lower(), self.name(t), *(fmt(res.get(c)) for c in cols[2:])))
        head = [self.progress(trials)] + ([self.note] if self.note else [])
        room = max(height - len(head) - 1, 2)  # a line for "... more"
        shown = rows if len(rows) <= room + 1 else rows[:room]
        widths = [max(len(r[i]) for r in shown) for i in range(len(cols))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in shown]
        more = [f"... {len(rows) - len(shown)} more"] if len(shown) < len(rows) else []
        return [ln if len(ln) < width else ln[: width - 2] + "…" for ln in head + lines + more]

    def _redraw(self, trials) -> None:
        self._erase()
        size = shutil.get_terminal_size((100, 24))
        # below the screen's height (a taller table scrolls out of reach of the redraw), narrower than it
        lines = self.table(trials, height=max(size.lines - 2, 3), width=max(size.columns, 20))
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
        self._drawn = len(lines)

    def _erase(self) -> None:
        if self.live and self._drawn:
            # the cursor's own line too (a ^C the terminal echoed), then back to its first column
            self.stream.write("\r" + CLEAR_LINE + (UP + CLEAR_LINE) * self._drawn)
            self.stream.flush()  # before a line said on the other stream (stderr) lands
            self._drawn = 0

    def _say(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
