"""CLI: ``python -m raygen.sweep NAME`` -> Ray Tune -> Parquet (-> report).

Runs on the cluster named by ``--address`` (``auto``, ``ray://host:10001``), else on a
local Ray started here. Workers reuse the environment Ray was started in: this very one
locally, and the one ``cluster.yaml`` installs on every node of a cluster. Ray's
``uv run`` integration (rebuild the driver's uv environment on each worker from
uv.lock: gigabytes with torch, minutes) is off unless ``--uv-env`` asks for it, for a
cluster whose nodes lack raygen.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from datetime import datetime

from raygen.core.errors import RaygenError
from raygen.core.storage import check_writable, is_remote, join, list_runs, new_run_dir, storage_uri, write_text
from raygen.record.transport import to_tune
from raygen.sweep.callbacks import trackers
from raygen.sweep.callbacks.trackers import TRACKERS
from raygen.sweep.preflight import check_address, check_args, check_data, overrides
from raygen.sweep.spec import Sweep, available, load_sweep

DEFAULT_STORAGE = "results"
RESULT_STATUSES = ("completed", "diverged", "stopped")  # a trial that ended in one of these gave its result
LOST = "its trial was lost with Ray's damaged experiment state (a full disk?): run the sweep again to measure it"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m raygen.sweep", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a sweep of generative models on Ray Tune: every trial a row in results.parquet,\n"
                    "every epoch a row in history.parquet, and a report.html comparing them. On the cluster\n"
                    "--address names, else on a local Ray; CPU-only when no GPU is found.",
        epilog="examples:\n  python -m raygen.sweep --list\n  python -m raygen.sweep gan_vs_vae --smoke\n"
               "  python -m raygen.sweep savae_beta --set epochs=20 --storage s3://bucket/runs\n"
               "  python -m raygen.sweep gan_vs_vae --resume            # the latest run, after Ctrl-C or a crash\n"
               "  python -m raygen.sweep gan_vs_vae --address auto      # on the running Ray cluster")
    p.add_argument("name", nargs="?", help="a sweep in sweeps/ (see --list) or a path to a sweep YAML")
    p.add_argument("--list", action="store_true", help="list the sweeps and exit")
    p.add_argument("--smoke", action="store_true", help="shrink every trial (1 epoch, a few batches)")
    p.add_argument("--data-root", help="dataset folder (else $RAYGEN_DATA_ROOT, else ~/.cache/raygen/data)")
    p.add_argument("--storage", default=os.environ.get("RAYGEN_STORAGE", DEFAULT_STORAGE),
                   help="where runs are stored: a local path, s3://... or gs://... (default: ./results)")
    p.add_argument("--address", help="Ray cluster to join: auto, ray://host:10001 (default: start a local Ray)")
    p.add_argument("--resume", nargs="?", const="latest", metavar="RUN",
                   help="continue an interrupted run (default: the latest run of this sweep)")
    p.add_argument("--skip-missing-data", action="store_true",
                   help="run the sweep although some of its datasets are absent (their trials fail)")
    p.add_argument("--retry-failed", action="store_true",
                   help="with --resume: run again the trials that failed (from their last checkpoint)")
    p.add_argument("--cpus-per-trial", type=float, help="CPUs each trial reserves (default: the sweep file's)")
    p.add_argument("--gpus-per-trial", type=float, help="may be fractional: 0.25 packs 4 trials per GPU")
    p.add_argument("--max-concurrent", type=int, help="at most this many trials at once (default: as many as fit)")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    p.add_argument("--uv-env", action="store_true",
                   help="have Ray rebuild this uv environment on cluster workers (nodes without raygen)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value in every trial (YAML value), e.g. --set epochs=3")
    p.add_argument("--stack", metavar="KEYS",
                   help="train trials that differ only in these keys (comma-separated, e.g. seed or seed,beta; "
                        "auto: seed and the loss weights) as one stacked model; none: never (default: the sweep "
                        "file's stack:)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.add_argument("--track", action="append", default=[], choices=sorted(TRACKERS), metavar="TRACKER",
                   help="also log every trial to mlflow or wandb (an optional extra; settings: the sweep "
                        "file's track: block)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also print Ray's own output: its status boxes, warnings and the workers' prints")
    return p.parse_args(argv)


def run_dir_for(storage: str, sweep: str, resume: str | None, smoke: bool) -> tuple[str, str]:
    """(<storage>/<sweep>, run name): a new timestamped run, or the one to resume."""
    base = join(storage_uri(storage), sweep)
    if not resume:
        return base, new_run_dir(base, datetime.now().strftime("%Y%m%d-%H%M%S") + ("-smoke" if smoke else ""))
    runs = list_runs(base)
    if resume == "latest":
        if not runs:
            raise RaygenError(f"--resume: no run of {sweep!r} to resume under {base}")
        return base, runs[-1]
    if resume not in runs:
        raise RaygenError(f"--resume: no run {resume!r} under {base}; runs there: {', '.join(runs) or '(none)'}")
    return base, resume


def start_ray(address: str | None, num_cpus: int | None, uv_env: bool = False, verbose: bool = False):
    # Must be set before Ray is imported: Ray reads it into a module constant.
    os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "1" if (uv_env and address) else "0"
    # Quality metrics (recon_mse, FID, ...) arrive with a trial's last epoch, not every
    # epoch; Tune's strict check would reject the per-epoch results that lack them. A trial
    # ASHA stops early then reaches Optuna without the metric, which records it as pruned.
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    if not verbose:  # Ray Tune's newer console prints its own boxes even at verbose=0
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray

    from raygen.sweep.callbacks.console import quiet_ray

    quiet_ray(verbose)
    if ray.is_initialized():
        return ray, False
    if address:
        try:
            ray.init(address=address, log_to_driver=verbose)
        except (ConnectionError, RuntimeError, TimeoutError, ValueError) as exc:  # Ray's "Failed to connect to GCS"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RaygenError(f"--address {address}: could not join the cluster ({first}); is it up "
                              f"(`ray status` on its head) and its port open to this machine?") from None
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, configure_logging=True, log_to_driver=verbose,
                 logging_level="WARNING" if verbose else "ERROR")
    return ray, True


def resources(sweep: Sweep, args: argparse.Namespace, cluster: dict[str, float]) -> dict[str, float]:
    cpus = args.cpus_per_trial if args.cpus_per_trial is not None else float(sweep.resources["cpus_per_trial"])
    gpus = args.gpus_per_trial if args.gpus_per_trial is not None else float(sweep.resources["gpus_per_trial"])
    if gpus > 0 and cluster.get("GPU", 0) == 0:
        print(f"note: the sweep asks for {gpus} GPU per trial but Ray sees no GPU; running CPU-only.")
        gpus = 0.0
    if cpus > cluster.get("CPU", 1):
        raise RaygenError(f"cpus_per_trial={cpus} exceeds the {cluster.get('CPU')} CPUs Ray sees; lower it")
    return {"cpu": cpus, "gpu": gpus}


def build_tuner(sweep: Sweep, args, trainable, base: str, run: str, resume: bool, smoke: bool, sets: dict):
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from raygen.sweep.callbacks.console import Console
    from raygen.sweep.callbacks.runstate import KeepState

    path = os.path.join(base, run)
    if resume:
        if not tune.Tuner.can_restore(path):
            raise RaygenError(f"--resume: {path} holds no restorable run")
        # Finished trials (completed or failed) stay as they are; interrupted ones continue
        # from their last checkpoint.
        return tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True,
                                  resume_errored=bool(getattr(args, "retry_failed", False)))
    max_conc = args.max_concurrent if args.max_concurrent is not None else sweep.max_concurrent
    scheduler = None
    if sweep.scheduler:
        from ray.tune.schedulers import ASHAScheduler

        asha = dict(sweep.scheduler.get("asha", {}))
        # Rungs, grace_period and max_t count epochs (a Ray step may hold several)
        scheduler = ASHAScheduler(metric=asha.pop("metric", "loss"), mode=asha.pop("mode", "min"),
                                  time_attr="epoch", **asha)
    if sweep.search == "grid":
        # Each grid point is one concrete, already validated config: evaluate them in order.
        # Tune needs every key in the space; a key a variant lacks stays None (= the default).
        # Lists cross as strings (config.to_tune): Ray would walk into them as nested spaces.
        groups, why_not = sweep.stacks(smoke, sets)
        configs = [to_tune(g[0]) if len(g) == 1 else {**to_tune(g[0]), "_stack": json.dumps([to_tune(c) for c in g])}
                   for g in groups]
        if sweep.stack:
            sizes = sorted({len(g) for g in groups if len(g) > 1})
            print(f"stack: {sum(len(g) for g in groups)} trials as {len(configs)} Ray trials"
                  + (f" (stacks of {', '.join(map(str, sizes))})" if sizes else " (none stacked)")
                  + "".join(f"; not stacked: {w}" for w in why_not), flush=True)
        space = {k: None for c in configs for k in c}
        # Ray honours max_concurrent_trials for a grid only when the generator is told too.
        search_alg = BasicVariantGenerator(points_to_evaluate=configs, max_concurrent=max_conc or 0)
        n = len(configs)
    else:
        search_alg = _final_metric_optuna()(metric=sweep.metric, mode=sweep.mode)
        space, n = sweep.param_space(smoke, sets), sweep.num_samples
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(search_alg=search_alg, scheduler=scheduler, num_samples=n,
                                    max_concurrent_trials=max_conc or None, reuse_actors=True),
        run_config=tune.RunConfig(
            name=run, storage_path=base, verbose=1 if args.verbose else 0,
            callbacks=[KeepState(path), Console(trial_keys(sweep, smoke, sets), sweep.metric, n),
                       *trackers.callbacks(trackers.merged(sweep.track, args.track), sweep.name)],
            # the trainable asks for checkpoints itself, by the clock (trainable.py)
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=0, num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
            sync_config=tune.SyncConfig(sync_artifacts=True)),
    )


def trial_keys(sweep: Sweep, smoke: bool, sets: dict) -> list[str]:
    """What tells the sweep's trials apart: the model and every swept key."""
    from raygen.sweep.callbacks.console import swept_keys

    if sweep.search == "grid":
        return swept_keys(sweep.grid(smoke, sets))
    space = sweep.param_space(smoke, sets)
    return ["model", *[k for k, v in space.items() if hasattr(v, "sample") and k != "model"]]


def _final_metric_optuna():
    from ray.tune.search.optuna import OptunaSearch

    class FinalMetricOptuna(OptunaSearch):
        """Optuna over metrics that arrive with the last epoch (FID, recon_mse): epochs
        without the metric are not reported as intermediate values (Ray's OptunaSearch
        would fail on them); the final result is what Optuna learns from."""

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            if self.metric in result:
                super().on_trial_result(trial_id, result)

    return FinalMetricOptuna


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list or not args.name:
        sweeps = available()
        width = max(map(len, sweeps), default=0)
        print("\n".join(f"{n:<{width}}  {d}" for n, d in sweeps.items()))
        return 0
    try:
        return run(args)
    except RaygenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    check_args(args)
    sweep = load_sweep(args.name)
    if args.stack is not None:
        sweep.stack = None if args.stack == "none" else args.stack if args.stack == "auto" else \
            [k.strip() for k in args.stack.split(",") if k.strip()]
    sets = overrides(args.set)
    sweep.check(args.smoke, sets)
    trackers.check(trackers.merged(sweep.track, args.track), f"sweep {sweep.name!r}")
    check_writable(storage_uri(args.storage))
    if args.address:
        check_address(args.address)
    else:  # the data is where this machine's workers read it: look before anything starts
        check_data(sweep, args, sets)
    base, run_name = run_dir_for(args.storage, sweep.name, args.resume, args.smoke)
    run_dir = os.path.join(base, run_name)
    repaired = repair_state(run_dir) if args.resume else []
    t_ray = time.perf_counter()
    ray, started = start_ray(args.address, args.num_cpus, args.uv_env, args.verbose)
    ray_start_s = time.perf_counter() - t_ray
    try:
        from ray import tune

        from raygen.data import data_root
        from raygen.record.rows import META_FILE
        from raygen.sweep.callbacks.runstate import WRITTEN
        from raygen.sweep.collect import (
            add_checkpoint_tally,
            add_unstarted,
            benchmark_line,
            rows_from_grid,
            run_metadata,
            write_results,
        )
        from raygen.sweep.trainable import GenerativeTrainable

        res = resources(sweep, args, ray.cluster_resources())
        root = str(data_root(args.data_root)) if (args.data_root or not args.address) else None
        trainable = tune.with_resources(
            tune.with_parameters(GenerativeTrainable, data_root=root, sweep_dir=base), res)
        tuner = build_tuner(sweep, args, trainable, base, run_name, bool(args.resume), args.smoke, sets)
        print(f"raygen: sweep {sweep.name!r} -> {run_dir}  (resources per trial: {res})", flush=True)
        # for reports of the run in progress
        write_text(join(run_dir, META_FILE), json.dumps(run_metadata(published=sweep.paper)))
        t0 = time.perf_counter()
        try:
            grid, interrupted = fit(tuner)
            wall = time.perf_counter() - t0
            results, history = rows_from_grid(grid, sweep.name, run_name, run_dir, interrupted)
            if sweep.search == "grid" and (interrupted or repaired):
                results = add_unstarted(results, sweep.grid(args.smoke, sets), sweep.name, run_name,
                                        *(["interrupted"] if interrupted else ["failed", LOST]))
            results = add_checkpoint_tally(results, WRITTEN.get(run_dir, {}))
            notes = write_results(results, history, run_dir, sweep.paper)
        except (OSError, EOFError, json.JSONDecodeError) as exc:  # Ray's state or a trial's files unwritable
            again = f"python -m raygen.sweep {args.name} --resume {run_name} --retry-failed"
            raise RaygenError(f"the run could not be completed ({type(exc).__name__}: "
                              f"{str(exc).strip().splitlines()[0][:300]}){disk_note(base, again)}") from None
        slots = max(1, int(min(ray.cluster_resources().get("CPU", 1) // max(res["cpu"], 1e-9),
                               args.max_concurrent or sweep.max_concurrent or 10**6)))
        line = benchmark_line(results, wall, slots, resumed=bool(args.resume), ray_start_s=ray_start_s)
        say_results(args, sweep, sets, results, notes, run_dir, line)
    finally:
        if started:
            ray.shutdown()
    return ending(args, results, run_dir, run_name, interrupted)


def say_results(args, sweep: Sweep, sets: dict, results, notes: list[str], run_dir: str, line: str) -> None:
    """The end of a sweep on the console: notes, the benchmark line, where the results are,
    the best configuration in plain words (and best.json), the report."""
    from raygen.sweep.callbacks.console import best_words
    from raygen.sweep.collect import best_trial

    for note in notes:
        print(f"note: not measured in any trial: {note}")
    print(line)
    counts = results["status"].value_counts().to_dict() if len(results) else {}
    print(f"results: {join(run_dir, 'results.parquet')}  ({len(results)} trials: {counts})")
    best = best_trial(results, sweep.metric, sweep.mode)
    if best is not None:
        print(best_words(best, trial_keys(sweep, args.smoke, sets)))
        write_text(join(run_dir, "best.json"), json.dumps(best, indent=2, allow_nan=False))
    if not args.no_report and not is_remote(run_dir):
        _report(run_dir)


def ending(args, results, run_dir: str, run_name: str, interrupted: bool) -> int:
    """The exit status, with what to do next when the run is not complete."""
    from raygen.sweep.callbacks.runstate import STOPPED

    if not interrupted:
        return exit_status(results, run_dir)
    left = int(results["status"].eq("interrupted").sum()) if len(results) else 0
    if run_dir in STOPPED:
        print(f"stopped: {STOPPED[run_dir]}; {left} trial(s) unfinished, the rest written above. Free space "
              f"there, then: python -m raygen.sweep {args.name} --resume {run_name}", file=sys.stderr)
        return 1
    print(f"interrupted: {left} trial(s) unfinished, the rest written above. Continue from their last "
          f"checkpoints with: python -m raygen.sweep {args.name} --resume {run_name}", file=sys.stderr)
    return 130


def repair_state(run_dir: str) -> list[str]:
    """Put back the last good copy of Ray's state files a full disk damaged (local runs)."""
    from raygen.sweep.callbacks.runstate import repair

    if is_remote(run_dir) or not os.path.isdir(run_dir):
        return []
    names = repair(run_dir)
    for name in names:
        print(f"raygen: {name} was damaged (a full disk?); put back its last good copy", file=sys.stderr)
    return names


def _again(sig, frame):  # a second Ctrl-C while the results of the first are being written
    raise KeyboardInterrupt


def fit(tuner):
    """``tuner.fit()`` and whether Ctrl-C (SIGINT) stopped it. Ray Tune stops cleanly on SIGINT
    (trials checkpointed, experiment state saved) and puts back the handler it found, ours:
    so finding ours in place afterwards says it happened."""
    previous = signal.signal(signal.SIGINT, _again)
    try:
        grid = tuner.fit()
        return grid, signal.getsignal(signal.SIGINT) is _again
    finally:
        signal.signal(signal.SIGINT, previous)


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


def exit_status(results, run_dir: str) -> int:
    """0 when every trial gave a result (completed, diverged, or stopped by the scheduler);
    else 1, with the trials that did not and why, and how to retry them."""
    bad = results[~results["status"].isin(RESULT_STATUSES)] if len(results) else results
    if not len(bad):
        return 0
    print(f"error: {len(bad)} of {len(results)} trials gave no result:", file=sys.stderr)
    for (status, error), group in bad.fillna({"error": ""}).groupby(["status", "error"], sort=False):
        ids = ", ".join(group["trial_id"].astype(str).head(3)) + (" ..." if len(group) > 3 else "")
        print(f"  {len(group)} {status} ({ids}){': ' + error if error else ''}", file=sys.stderr)
    print(f"  fix what the errors say, then rerun them: python -m raygen.sweep {results['sweep'].iloc[0]} "
          f"--resume {os.path.basename(run_dir)} --retry-failed", file=sys.stderr)
    return 1


def _report(run_dir: str) -> None:
    from raygen.report.page import write_report

    try:
        path = write_report(run_dir)
        print(f"report: {path}  (and {os.path.join(os.path.dirname(path), 'report.md')})")
    except Exception as exc:  # a report problem must never lose the results already written
        print(f"warning: report failed ({type(exc).__name__}: {exc}); results are intact", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
