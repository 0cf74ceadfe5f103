"""The sweep's console: a table naming trials by model and swept values with the sweep's
metric, one line per finished trial, and little else."""
from __future__ import annotations

import io
import re
from types import SimpleNamespace

import pandas as pd
import pytest

from raygen.sweep.callbacks.console import Console, best_words, fmt
from raygen.sweep.plan import swept_keys
from raygen.sweep.spec import load_sweep

from conftest import REPO
from sweep_helpers import run_sweep


def fake(status, config, result=None, trial_id="t"):
    return SimpleNamespace(status=status, config=config, last_result=result or {}, trial_id=trial_id,
                           get_error=lambda: RuntimeError("worker died: out of memory"))


def test_trials_are_named_by_model_and_swept_values():
    configs = load_sweep("gan_vs_vae_quick").grid(smoke=True)
    keys = swept_keys(configs)
    assert keys[0] == "model" and {"seed", "latent_dim"} <= set(keys) and "epochs" not in keys


def test_the_table_has_the_model_the_swept_values_and_the_metric():
    con = Console(["model", "latent_dim", "seed"], "cls_fid", total=3, stream=io.StringIO(), live=True)
    trials = [fake("RUNNING", {"model": "vae_conv", "latent_dim": 10, "seed": 1, "epochs": 20}, {"epoch": 3}),
              fake("PENDING", {"model": "gan_dcgan", "seed": 0}),
              fake("TERMINATED", {"model": "vae_mlp", "latent_dim": 2, "seed": 0}, {"cls_fid": 45.2123})]
    trials[0].last_result["loss"] = 123.456
    lines = con.table(trials)
    assert re.fullmatch(r"progress: 0/3 finished; 1 done, 1 pending, 1 running; \d+ s in", lines[0])
    assert lines[1].split() == ["status", "trial", "epoch", "loss", "cls_fid"]  # the loss while the metric is unknown
    assert re.search(r"running\s+vae_conv  latent_dim=10  seed=1\s+3\s+123.5\s+—", lines[2])
    assert "gan_dcgan  seed=0" in lines[3] and len(lines) == 4  # finished trials get a line of their own
    con.on_trial_complete(0, trials, trials[2])
    assert re.search(r"1/3 finished; .*; \d+ s in, about \d+ s left$", con.table(trials)[0])  # an estimate


def test_the_table_fits_the_terminal_it_is_drawn_on():
    con = Console(["model", "seed"], "cls_fid", total=40, stream=io.StringIO(), live=True)
    trials = [fake("RUNNING" if i < 3 else "PENDING", {"model": "vae_conv_" + "x" * 80, "seed": i}, {"epoch": 1})
              for i in range(40)]
    lines = con.table(trials[::-1], height=10, width=60)
    assert len(lines) == 10 and all(len(ln) < 60 for ln in lines) and lines[-1] == "... 33 more"  # of 40: 7 shown
    assert [ln.split()[0] for ln in lines[2:5]] == ["running"] * 3  # the running trials first


@pytest.mark.parametrize("at_write", [0, 1, 2])
def test_a_line_said_by_a_signal_handler_mid_draw_stays_and_leaves_no_table_behind(at_write):
    """Ctrl-C's handler runs between any two bytecodes of the drawing thread: here inside the
    n-th write of a redraw (the table's lines, before their count is kept)."""
    import pyte

    from raygen.sweep.callbacks import console as console_mod

    class Terminal(io.StringIO):
        def __init__(self):
            super().__init__()
            self.writes, self.fire = 0, None

        def write(self, text):
            n = super().write(text)
            self.writes += 1
            if self.fire is not None and self.writes == self.fire:
                self.fire = None
                console_mod.say("stopping: 1 running trial(s) save a checkpoint first", stream=self, sticky=True)
            return n

    out = Terminal()
    con = Console(["model", "seed"], "cls_fid", total=3, stream=out, live=True)
    con.setup()
    trials = [fake("RUNNING", {"model": "vae", "seed": i}, {"epoch": 1}, trial_id=f"t{i}") for i in range(3)]
    try:
        con._last = 0
        con.on_step_end(0, trials)  # a first table
        out.fire, con._last = out.writes + 1 + at_write, 0
        con.on_step_end(1, trials)  # the signal arrives during this redraw
        trials[0].status, trials[0].last_result = "TERMINATED", {"cls_fid": 5.0}
        con.on_trial_complete(2, trials, trials[0])
        con._last = 0
        con.on_step_end(3, trials)
        con.on_experiment_end(trials)
    finally:
        console_mod.ACTIVE[:] = []
    screen = pyte.Screen(100, 40)
    pyte.ByteStream(screen).feed(out.getvalue().replace("\n", "\r\n").encode())
    shown = [ln.rstrip() for ln in screen.display if ln.strip()]
    assert [ln for ln in shown if ln.startswith("stopping")] == ["stopping: 1 running trial(s) save a checkpoint first"]
    assert not [ln for ln in shown if re.match(r"(progress:|status\s+trial|running )", ln)], shown
    assert any(ln.startswith("[1/3] ") for ln in shown), shown  # the finished trial's line


def test_one_line_per_finished_failed_or_diverged_trial():
    out = io.StringIO()
    con = Console(["model", "seed"], "recon_mse", total=3, stream=out, live=False)
    con.on_trial_complete(0, [], fake("TERMINATED", {"model": "vae", "seed": 0}, {
        "recon_mse": 0.01234567, "epoch": 30, "time_total_s": 95.16, "status": "completed"}))
    con.on_trial_complete(0, [], fake("TERMINATED", {"model": "vae", "seed": 1},
                                      {"status": "diverged", "error": "non-finite loss at epoch 2", "epoch": 2}))
    con.on_trial_error(0, [], fake("ERROR", {"model": "vae", "seed": 2}))
    lines = out.getvalue().splitlines()
    assert lines == ["[1/3] completed vae  seed=0  recon_mse 0.01235, epoch 30, 95.2 s",
                     "[2/3] diverged  vae  seed=1  epoch 2: non-finite loss at epoch 2",
                     "[3/3] failed    vae  seed=2: worker died: out of memory"]


def test_a_stacked_trial_is_named_by_its_members_and_their_range():
    import json

    from raygen.record.transport import to_tune

    out = io.StringIO()
    members = [to_tune({"model": "vae_mlp", "seed": s, "hidden": [256]}) for s in (0, 1, 2)]
    con = Console(["model", "seed"], "recon_mse", total=1, stream=out, live=False)
    con.on_trial_complete(0, [], fake("TERMINATED", {**members[0], "_stack": json.dumps(members)}, {
        "status": "completed", "epoch": 25, "recon_mse": 0.5,
        "members_json": json.dumps([{"recon_mse": 0.43}, {"recon_mse": 0.42}, {"recon_mse": 0.44}])}))
    assert out.getvalue().splitlines() == ["[1/1] completed vae_mlp  seed=0,1,2  recon_mse 0.42 to 0.44, epoch 25"]


def test_best_is_said_in_plain_words():
    best = {"metric": "cls_fid", "mode": "min", "trial_id": "a_00001", "cls_fid": 42.7749, "model": "rae_l2",
            "latent_dim": 10, "seed": 0, "beta": None, "kernel": "imq"}
    assert best_words(best, ["model", "latent_dim", "seed", "beta"]) == \
        "best (min cls_fid): rae_l2  latent_dim=10  seed=0: cls_fid 42.77 (trial a_00001)"
    assert [fmt(v) for v in (3, 2.0, 0.000123456, float("nan"), None)] == ["3", "2", "0.0001235", "—", "—"]


@pytest.mark.slow
def test_a_smoke_sweep_prints_a_screenful_plus_one_line_per_trial(tmp_path, data_root):
    out = run_sweep(REPO / "raygen" / "sweeps" / "gan_vs_vae.yaml", tmp_path / "runs", data_root, "--smoke",
                    "--num-cpus", "2")
    text = out.stdout + out.stderr
    trials = len(load_sweep("gan_vs_vae").grid(smoke=True))
    lines = text.splitlines()
    assert len(lines) <= 25 + trials, text[-3000:]
    done = [ln for ln in lines if re.match(r"\[\s*\d+/\d+\] completed ", ln)]
    assert len(done) == trials and all("seed=" in ln and "cls_fid" in ln for ln in done)
    assert any(ln.split("] completed ")[1].startswith("vae_conv  seed=0  latent_dim=") for ln in done)
    assert text.count("no training split here") == 1  # the offline fallback said once, as a note
    assert "GenerativeTrainable_" not in text and "Traceback" not in text and "np.int64" not in text
    # the best configuration by its mean over seeds, as the report's verdict chooses
    assert re.search(r"^best \(min cls_fid, mean over 3 seeds\): \S+", text, re.M) and "benchmark:" in text


def _in_a_terminal(cmd: list[str], rows: int, cols: int, ctrl_c_when, timeout: float = 400):
    """Run ``cmd`` in a pseudo-terminal of rows x cols, type Ctrl-C once ``ctrl_c_when(output)``
    holds; (exit status, every byte it wrote)."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import termios
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: a session of its own on the terminal, as a shell would start it
        os.chdir(REPO)
        os.execv(cmd[0], cmd)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    data, typed, deadline = b"", False, time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child ended: the terminal is gone
                break
            if not chunk:
                break
            data += chunk
        if not typed and ctrl_c_when(data):
            os.write(fd, b"\x03")  # the terminal turns it into SIGINT for the foreground processes
            typed = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), data


@pytest.mark.slow
def test_on_a_24_row_terminal_the_table_leaves_no_stale_lines_and_the_stop_stays_visible(tmp_path, data_root):
    import sys

    import pyte

    rows, cols = 24, 100
    # one trial at a time: on an idle machine the smoke trials end within seconds of each other, and
    # the Ctrl-C must come while most are still to run
    cmd = [sys.executable, "-m", "raygen.sweep", "gan_vs_vae", "--smoke", "--no-report", "--num-cpus", "2",
           "--max-concurrent", "1", "--data-root", str(data_root), "--storage", str(tmp_path / "runs")]
    def running_with_time_left(out: bytes) -> bool:  # the last table drawn: a trial running, a time left
        drawn = re.findall(rb"progress: [^\r\n]*", out)
        return bool(drawn) and b" running" in drawn[-1] and b" left" in drawn[-1]

    code, data = _in_a_terminal(cmd, rows, cols, running_with_time_left)
    screen = pyte.HistoryScreen(cols, rows, history=100_000)
    pyte.ByteStream(screen).feed(data)
    text = lambda line: "".join(line[x].data for x in range(cols)).rstrip()
    shown = [text(ln) for ln in screen.history.top] + [ln.rstrip() for ln in screen.display]
    assert code == 130, "\n".join(shown)
    table = [ln for ln in shown if re.match(r"(progress:|status\s+trial|running |pending |\.\.\. \d+ more)", ln)]
    assert table == [], "\n".join(shown)  # every redraw erased the one before, and the end erased the last
    stop = [i for i, ln in enumerate(shown) if re.match(r"(\^C)?stopping", ln)]  # the terminal echoes ^C
    assert len(stop) == 1, "\n".join(shown)  # said once, still on screen: a trial was running (nearly always),
    assert re.search(r"save a checkpoint first .*Ctrl-C again to stop now|no trial is running", shown[stop[0]])
    assert any(re.match(r"\[ ?\d+/24\] completed ", ln) for ln in shown[:stop[0]])
    assert "interrupted:" in "\n".join(shown[stop[0]:]) and "--resume" in "\n".join(shown[stop[0]:])
    # while it ran, the table fitted the terminal and said the time left
    drawn = re.findall(rb"progress: [^\r\n]*", data)
    assert any(b"left" in ln for ln in drawn) and all(len(ln) < cols for ln in drawn)
    assert len(shown) < 60, "\n".join(shown)  # a screenful and the finished trials' lines
    df = pd.read_parquet(next((tmp_path / "runs" / "gan_vs_vae").glob("*/results.parquet")))
    assert len(df) == 24 and df.trial_id.is_unique  # one row per trial, each under its own name
    assert len(df.drop_duplicates(["model", "seed", "latent_dim"])) == 24
