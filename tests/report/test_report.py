"""``python -m raygen.report`` on hand-made run folders: the β × γ grid of Zemouri 2020 Figure 9,
partial runs read from Ray's result.json, empty runs, missing images, bad inputs; no Ray."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from raygen.core.errors import RaygenError
from raygen.report.__main__ import main
from raygen.report.page import write_report
from raygen.report.run import load_run, locate

from conftest import REPO
from report_fixtures import base_row, mnist_images, result_json_trial, savae_run, save_grid, write_run


def imgs(html: str) -> list[str]:
    return re.findall(r"<img [^>]*>", html)


def self_contained(html: str) -> None:
    assert "<script" not in html and "<link" not in html and "url(" not in html
    assert all('src="data:image/png;base64,' in tag for tag in imgs(html))


@pytest.fixture(scope="module")
def savae_dir(tmp_path_factory, data_root) -> Path:
    return savae_run(tmp_path_factory.mktemp("savae") / "savae_beta" / "20250102-030405", data_root)


def test_beta_gamma_grid_of_the_same_test_images(savae_dir):
    html = write_report(savae_dir).read_text()
    self_contained(html)
    section = html[html.index('id="grid"'):html.index('id="img-samples"')]
    panels = section.split('<div class="panel">')[1:]
    assert [re.search(r"<h4>(.*?)</h4>", p).group(1) for p in panels] == ["latent size = 2", "latent size = 100"]
    for panel in panels:
        rows = re.findall(r"<tr><th>β = ([^<]+)</th>", panel)
        assert rows == ["0", "0.001", "0.005", "0.1"]
        assert re.findall(r"<th>γ = ([^<]+)</th>", panel) == ["0", "0.1"]
        assert panel.count('alt="the fixed test inputs"') == 1
        # the best setting (lowest FID by construction) is framed, and only it
        (best,) = re.findall(r'<td class="bestcell"><img [^>]*alt="([^"]+)"', panel)
        assert best == "beta=0.005 gamma=0.1"
        assert len(imgs(panel)) == 1 + 8
    # β = 0.1, γ = 0, latent 2: seed 0 diverged, so the cell shows seed 1 and says so
    assert "seed 1 (1 of 2 diverged)" in panels[0]
    assert "Best β by FID" in html and "non-finite loss at epoch 2" in html
    md = (savae_dir / "report.md").read_text()
    assert "| ★ savae | β=0.005, γ=0.1, latent size=100 |" in md
    assert "| 0.1 | 100 | 0.005 |" in md  # Which β: γ=0.1, latent 100 -> β 0.005


def test_best_follows_the_sweeps_metric_unless_told_otherwise(tmp_path, data_root):
    import shutil

    run = tmp_path / "savae_beta" / "r1"
    savae_run(run, data_root, betas=(0.0, 0.1), gammas=(0.0,), latents=(2,), seeds=(1,))
    assert "best means**: FID" in (write_report(run), (run / "report.md").read_text())[1]
    (run / "best.json").write_text('{"metric": "recon_mse", "mode": "min", "trial_id": "t000"}')
    write_report(run)
    assert "best means**: recon. MSE (lower is better)" in (run / "report.md").read_text()
    own = (run / "report.md").read_text()
    path = write_report(run, metric="fid")  # --metric wins, in a report of its own
    assert path == run / "report-by-fid.html" and path.exists()
    assert "best means**: FID" in (run / "report-by-fid.md").read_text()
    assert (run / "report.md").read_text() == own  # the run's own report is not overwritten
    (run / "best.json").write_text('{"metric": "classifier_acc", "mode": "max", "trial_id": "t000"}')
    write_report(run)  # the evaluator's own accuracy, the same in every trial: never what "best" means
    assert "best means**: FID" in (run / "report.md").read_text()
    (run / "best.json").write_text('{"metric": "not_a_metric"}')  # a metric the run lacks: the default
    write_report(run)
    assert "best means**: FID" in (run / "report.md").read_text()
    shutil.rmtree(run)


def test_partial_run_is_read_from_rays_result_json(tmp_path, data_root):
    run = tmp_path / "sweepx" / "20250101-000000"
    cfg = {"model": "vae_mlp", "dataset": "mnist", "latent_dim": 2, "seed": 0, "epochs": 2, "eval_split": "test"}
    done = result_json_trial(run, "T_a", [
        {"trial_id": "a", "epoch": 1, "loss": 200.0, "config": cfg, "time_total_s": 3.0, "hostname": "h"},
        {"trial_id": "a", "epoch": 2, "loss": 150.0, "recon_mse": 0.05, "status": "completed",
         "samples_png": "samples.png", "config": cfg, "time_total_s": 6.0, "hostname": "h"}])
    save_grid(mnist_images(data_root, 16), done / "samples.png", 4)
    result_json_trial(run, "T_b", [{"trial_id": "b", "epoch": 1, "loss": 210.0, "config": {**cfg, "latent_dim": 8},
                                    "time_total_s": 3.0}])
    with (run / "T_b" / "result.json").open("a") as f:
        f.write('{"trial_id": "b", "epo')  # a line being written right now
    result_json_trial(run, "T_c", [], error="RaygenError: mnist: missing files", params={**cfg, "seed": 5})
    loaded = load_run(run)
    assert "partial results" in loaded.source
    st = loaded.results.set_index("trial_id")["status"].to_dict()
    assert st == {"a": "completed", "b": "running", "T_c": "failed"}
    assert list(loaded.history.groupby("trial_id").size().sort_index()) == [2, 1]
    assert loaded.results.set_index("trial_id").loc["T_c", "seed"] == 5  # config from params.json
    html = write_report(run).read_text()
    self_contained(html)
    assert "still running or was interrupted" in html and "RaygenError: mnist: missing files" in html
    assert len(imgs(html)) >= 2  # the sample grid and at least one plot


def test_empty_run_says_nothing_has_reported(tmp_path):
    run = tmp_path / "s" / "20250101-000000"
    run.mkdir(parents=True)
    (run / "raygen.json").write_text("{}")  # what a sweep writes first
    html = write_report(run).read_text()
    assert "no trial has reported" in html and "No trial has reported yet." in html
    write_run(run, [], [])  # a results.parquet with no rows
    assert "No trial has reported yet." in write_report(run).read_text()


def test_all_failed_run_lists_every_error(tmp_path):
    run = write_run(tmp_path / "s" / "r", [base_row(i, status="failed", error=f"boom {i}", seed=i) for i in range(3)],
                    [])
    html = write_report(run).read_text()
    assert "Failed and diverged trials (3)" in html and all(f"boom {i}" in html for i in range(3))


def test_missing_image_files_are_named_not_broken(tmp_path, data_root):
    run = tmp_path / "s" / "r"
    save_grid(mnist_images(data_root, 16), run / "t0" / "samples.png", 4)
    write_run(run, [base_row(0, samples_png="t0/samples.png", recon_mse=0.1),
                    base_row(1, samples_png="t1/samples.png", recon_mse=0.2, seed=1)], [])
    html = write_report(run).read_text()
    assert "image missing: t1/samples.png" in html
    assert sum("alt=\"vae_mlp samples_png" in t for t in imgs(html)) == 1


def test_locate_accepts_a_parquet_path_a_run_or_a_sweep_folder(tmp_path):
    sweep = tmp_path / "gan_vs_vae"
    old = write_run(sweep / "20250101-000000", [base_row(0)], [])
    new = write_run(sweep / "20250202-000000", [base_row(0)], [])
    assert locate(sweep) == new and locate(old) == old and locate(old / "results.parquet") == old
    with pytest.raises(RaygenError, match="neither a run folder"):
        locate(tmp_path / "nope")
    (old / "results.parquet").write_bytes(b"not parquet")
    with pytest.raises(RaygenError, match="cannot read .*results.parquet"):
        load_run(old)
    pd.DataFrame({"a": [1, 2]}).to_parquet(old / "results.parquet")  # a table, but not a run's
    with pytest.raises(RaygenError, match="is not a raygen results file \\(no trial_id or status column\\)"):
        load_run(old)


def test_an_out_folder_that_cannot_be_made_is_one_line(tmp_path, capsys):
    from raygen.report.__main__ import main

    a, b = (write_run(tmp_path / "s" / name, [base_row(0)], []) for name in ("r1", "r2"))
    (tmp_path / "afile").write_text("x")
    assert main([str(a), str(b), "--out", str(tmp_path / "afile")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {tmp_path / 'afile'}: cannot make it (") \
        and err.count("\n") == 1, err


def test_cli_and_no_ray_import(tmp_path, capsys):
    run = write_run(tmp_path / "s" / "r", [base_row(i, model="savae", beta=b, fid=10 * b + 1, seed=s)
                                           for i, (b, s) in enumerate([(0.0, 0), (0.1, 0), (0.0, 1)])], [])
    code = ("import sys; from raygen.report.__main__ import main; rc = main([sys.argv[1]]); "
            "assert not [m for m in sys.modules if m == 'ray' or m.startswith('ray.')], 'ray imported'; "
            "sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(run)], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"report: {run / 'report.html'}" in out.stdout and (run / "report.md").exists()
    assert main([str(run / "missing")]) == 2
    assert "neither a run folder" in capsys.readouterr().err
    elsewhere = tmp_path / "notes"
    elsewhere.mkdir()
    assert main([str(elsewhere)]) == 2 and list(elsewhere.iterdir()) == []  # no report written into it
    assert "holds no raygen run" in capsys.readouterr().err
    assert main([str(run), "--metric", "loss"]) == 2
    assert "--metric 'loss' is not a quality metric this run measured; choose one of: fid" in capsys.readouterr().err
    budget = write_run(tmp_path / "b" / "r", [base_row(0, fid=3.0, val_fid=2.5)], [])
    assert main([str(budget), "--metric", "val_fid"]) == 2  # what a budget chooses on, said as such
    assert "--metric 'val_fid' is measured on the validation images a budget chooses on; the report ranks on the " \
           "held-out split (fid); choose one of: fid" in capsys.readouterr().err


def test_report_columns_survive_a_round_trip_of_list_configs(tmp_path):
    # tuple configs (hidden sizes) are stored as lists in Parquet; they must group like values
    rows = [base_row(i, hidden=[512, 256] if i < 2 else [256], seed=i % 2, recon_mse=0.1 * (i + 1))
            for i in range(4)]
    run = write_run(tmp_path / "s" / "r", rows, [])
    assert not isinstance(pd.read_parquet(run / "results.parquet")["hidden"].iloc[0], str)
    md = (write_report(run).with_suffix(".md")).read_text()
    assert "| ★ vae_mlp | hidden=[512, 256] |" in md


def test_grid_of_a_single_setting_without_a_model_column(tmp_path, data_root):
    run = tmp_path / "s" / "r"
    x = mnist_images(data_root)
    save_grid(x, run / "t0" / "recon_fixed.png", 10)
    row = base_row(0, recon_fixed_png="t0/recon_fixed.png", recon_mse=0.1)
    del row["model"]
    write_run(run, [row], [])
    html = write_report(run).read_text()
    grid = html[html.index('id="grid"'):]
    assert "<h4>all trials</h4>" in grid and "recon. MSE 0.1000 · seed 0" in grid and "bestcell" not in grid


def test_several_runs_make_one_report(tmp_path, data_root):
    a = savae_run(tmp_path / "savae_beta" / "20250102-030405", data_root, betas=(0.0, 0.1), gammas=(0.0,),
                  latents=(100,), seeds=(0,))
    b = savae_run(tmp_path / "savae_beta" / "20250103-030405", data_root, betas=(0.001, 0.005), gammas=(0.0,),
                  latents=(100,), seeds=(0,))  # same trial ids t000, t001 as run a
    path = write_report([a, b])
    assert path == tmp_path / "savae_beta" / "combined-20250102-030405+20250103-030405" / "report.html"
    html = path.read_text()
    self_contained(html)
    assert "image missing" not in html and "2 runs combined" in html
    grid = html[html.index('id="grid"'):html.index('id="img-samples"')]
    assert re.findall(r"<tr><th>β = ([^<]+)</th>", grid) == ["0", "0.001", "0.005", "0.1"]
    md = (path.parent / "report.md").read_text()
    assert "| 20250102-030405/t000 |" in md and "| 20250103-030405/t001 |" in md  # ids kept apart
    with pytest.raises(RaygenError, match="given twice"):
        write_report([a, a])
    assert not (a.parent / f"combined-{a.name}+{a.name}").exists()  # refused before its folder was made
    assert main([str(a), str(b), "--out", str(tmp_path / "both")]) == 0
    assert (tmp_path / "both" / "report.html").exists()
    # another sweep's smoke run combined with a: its own folder (a's and b's report stays), labelled
    smoke = "20250104-030405-smoke"
    c = write_run(tmp_path / "other" / smoke, [base_row(0, recon_mse=0.3, sweep="other", run=smoke)], [])
    both = write_report([a, c])
    assert both.parent.name == "combined-20250102-030405+other.20250104-030405-smoke" and path.exists()
    html = both.read_text()
    assert "2 runs of 2 sweeps (other, savae_beta) combined" in html
    assert "Includes smoke runs (--smoke): 20250104-030405-smoke" in html


def test_hostile_values_and_files_are_shown_as_text_and_never_stop_the_report(tmp_path, data_root):
    """HTML and mathtext in result strings, a very long value, a zero-width PNG, a FIFO and an
    oversized file named like images: the report is written, each shown as plain text."""
    import os
    import struct
    import zlib

    from raygen.report import images

    run = tmp_path / "s" / "r"
    save_grid(mnist_images(data_root, 16), run / "t0" / "samples.png", 4)
    (run / "t1").mkdir()
    ihdr = struct.pack(">IIBBBBB", 0, 28, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    (run / "t1" / "samples.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk)  # width 0
    os.mkfifo(run / "t2.png")
    big = run / "t3" / "samples.png"
    big.parent.mkdir()
    with open(big, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.truncate(images.MAX_IMAGE_BYTES + 1)
    models = ["<script>alert(1)</script>", "$\\frac{a}{$", "m" * 5000, "vae_mlp"]
    rows = [base_row(i, model=m, samples_png=p, recon_mse=0.1 + i / 10, seed=0, lr=1e-3 * (i + 1))
            for i, (m, p) in enumerate(zip(models, ["t0/samples.png", "t1/samples.png", "t2.png", "t3/samples.png"]))]
    rows.append(base_row(9, status="failed", error="<b>$x$</b>" + "e" * 10_000, model="vae_mlp", seed=1))
    history = [{"trial_id": r["trial_id"], "epoch": e, "loss": 1.0 / e} for r in rows[:4] for e in (1, 2)]
    html = write_report(write_run(run, rows, history)).read_text()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "not embedded (an empty or damaged PNG): t1/samples.png" in html
    assert "not embedded (not a regular file): t2.png" in html
    assert "over the 16 MB cap): t3/samples.png" in html
    assert "<b>$x$</b>" not in html and "&lt;b&gt;$x$&lt;/b&gt;" in html


def test_a_run_in_progress_reads_each_trials_epochs_from_its_epochs_file(tmp_path):
    """Results name the trial's epochs file (record.transport) and carry no epochs: the report of a
    run in progress reads them there, each epoch's last line (a restored trial re-runs some), and a
    step being appended right now (a gzip member cut short) is skipped, not an error."""
    from raygen.record.transport import EPOCHS_NAME, step_line

    run_dir = tmp_path / "runs" / "sw" / "r1"
    config = {"model": "vae_mlp", "seed": 0}
    lines = [{"trial_id": "t0", "epoch": e, "loss": 10.0 - e, "training_iteration": i + 1, "epochs_file": EPOCHS_NAME,
              "config": config} for i, e in enumerate((2, 3))]
    trial = result_json_trial(run_dir, "t0_vae_mlp", lines, params=config)
    steps = [[{"epoch": 1, "loss": 9.5}, {"epoch": 2, "loss": 8.5}],
             [{"epoch": 2, "loss": 8.0}, {"epoch": 3, "loss": 7.0}]]  # restored after epoch 1: epoch 2 again
    (trial / EPOCHS_NAME).write_bytes(b"".join(step_line(s) for s in steps) + step_line([{"epoch": 4}])[:9])
    run = load_run(run_dir)
    hist = run.history[run.history.trial_id == "t0"].sort_values("epoch")
    assert hist.epoch.tolist() == [1, 2, 3] and hist.loss.tolist() == [9.5, 8.0, 7.0]
    assert "epochs_file" not in run.results and "steps_json" not in run.results


def test_a_run_folder_that_cannot_be_written_is_one_line_pointing_at_out(tmp_path, monkeypatch):
    import raygen.report.page as page

    run = write_run(tmp_path / "s" / "r", [base_row(0)], [])

    def read_only(path, write):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(page, "atomic_write", read_only)
    with pytest.raises(RaygenError, match=r"cannot write the report into .*r \(Read-only file system\); give --out"):
        write_report(run)
