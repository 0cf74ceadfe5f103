"""The command line: ``python -m raygen.sweep NAME`` -> Ray Tune -> Parquet (-> report).

Runs on the cluster named by ``--address`` (``auto``, ``ray://host:10001``), else on a
local Ray started here. Workers reuse the environment Ray was started in: this very one
locally, and the one ``cluster.yaml`` installs on every node of a cluster. Ray's
``uv run`` integration (rebuild the driver's uv environment on each worker from
uv.lock: gigabytes with torch, minutes) is off unless ``--uv-env`` asks for it, for a
cluster whose nodes lack raygen.

Only what ``--help`` and ``--list`` need is imported at the top: torch, Ray and pandas
load once a sweep is run.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from datetime import datetime

from raygen.core.errors import RaygenError, one_line_parser
from raygen.sweep.callbacks.trackers import TRACKERS
from raygen.sweep.spec import available

DEFAULT_STORAGE = "results"
LOST = "its trial was lost with Ray's damaged experiment state (a full disk?): run the sweep again to measure it"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = one_line_parser(
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
    p.add_argument("--trust-run", action="store_true",
                   help="with --resume: resume a run folder raygen did not write for you (a colleague's); "
                        "Ray unpickles its state, so only one whose source you trust")
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
    p.add_argument("--only", action="append", default=[], metavar="KEY=V1,V2",
                   help="run only the sweep's trials whose KEY is one of these values, e.g. --only model=vae_gan "
                        "(repeatable; a budget's draws stay those of the whole sweep)")
    p.add_argument("--budget", type=int, metavar="N",
                   help="draw N configurations per model instead of the sweep's budget: trials (its first N "
                        "draws: a smaller budget is a prefix of a larger one)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.add_argument("--track", action="append", default=[], choices=sorted(TRACKERS), metavar="TRACKER",
                   help="also log every trial to mlflow or wandb (an optional extra; settings: the sweep "
                        "file's track: block)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also print Ray's own output: its status boxes, warnings and the workers' prints")
    return p.parse_args(argv)


def run_dir_for(storage: str, sweep: str, resume: str | None, smoke: bool) -> tuple[str, str]:
    """(<storage>/<sweep>, run name): a new timestamped run, or the one to resume."""
    from raygen.core.storage import join, list_runs, new_run_dir, storage_uri

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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command as given, for the run's provenance
    if args.list or not args.argv:
        sweeps = available()
        width = max(map(len, sweeps), default=0)
        print("\n".join(f"{n:<{width}}  {d}" for n, d in sweeps.items()))
        return 0
    try:
        if not args.name:
            raise RaygenError(unnamed(args))
        return run(args)
    except RaygenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the run started, or a second one while it stopped
        return stopped_at_once(args)


def unnamed(args: argparse.Namespace) -> str:
    """Why a command with options but no sweep name does nothing, and the command meant."""
    if args.name == "":
        return "the sweep name is empty; name one of --list's sweeps or a sweep file"
    if args.resume and args.resume != "latest" and args.resume in available():
        return (f"--resume took {args.resume!r} as the run to resume, and no sweep is named; the name goes first: "
                f"python -m raygen.sweep {args.resume} --resume")
    return "no sweep named: python -m raygen.sweep NAME [options] (NAME: one of --list's sweeps or a sweep file)"


def stopped_at_once(args: argparse.Namespace) -> int:
    """One line (no traceback) and, once the run exists, the command that resumes it: the trials'
    checkpoints and Ray's state are kept as they were."""
    from raygen.core.storage import is_remote
    from raygen.sweep.outcome import resume_command

    run_name, run_dir = getattr(args, "run_name", None), getattr(args, "run_dir", "")
    if run_name is None or not (is_remote(run_dir) or os.path.exists(os.path.join(run_dir, "tuner.pkl"))):
        print("stopped before the sweep started: nothing to resume", file=sys.stderr)
    else:
        print("stopped at once: the trials' last checkpoints are kept; the results of this session are "
              f"written when it resumes: {resume_command(args, run_name)}", file=sys.stderr)
    return 130


def run(args: argparse.Namespace):
    """Check everything, run the sweep on Ray, write its results; the exit status."""
    # Before anything imports Ray, which reads it into a module constant.
    os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "1" if (args.uv_env and args.address) else "0"
    plan = prepare(args)
    # Only what runs before Ray's start is imported here: pandas and Ray Tune load while it starts
    from raygen.sweep.guard import check_plan, lock_run, save_plan
    from raygen.sweep.tuner import start_ray

    base, run_name = run_dir_for(args.storage, plan.sweep.name, args.resume, args.smoke)
    run_dir = os.path.join(base, run_name)
    args.run_name, args.run_dir = run_name, run_dir
    lock_run(run_dir)
    (check_plan if args.resume else save_plan)(run_dir, plan)
    repaired = repair_state(run_dir, args.trust_run) if args.resume else []
    t_ray = time.perf_counter()
    ray, started = start_ray(args.address, args.num_cpus, args.uv_env, args.verbose)
    ray_start_s = time.perf_counter() - t_ray
    try:
        from raygen.core.storage import join, write_text
        from raygen.record.rows import META_FILE
        from raygen.sweep.collect import run_metadata
        from raygen.sweep.provenance import provenance

        tuner, res = tuner_for(plan, args, ray, base, run_name)
        print(f"raygen: sweep {plan.sweep.name!r} -> {run_dir}  (resources per trial: {res})", flush=True)
        # for reports of the run in progress
        args.provenance = provenance(getattr(args, "argv", []))
        if plan.probed:  # why stack: auto stacked what it did, for the report's header
            args.provenance["stacking"] = plan.stack_line()
        write_text(join(run_dir, META_FILE), json.dumps(run_metadata(published=plan.sweep.paper,
                                                                     provenance=args.provenance)))
        results, interrupted = execute(plan, args, tuner, base, run_name, repaired, res, ray, ray_start_s)
    finally:
        if started:
            ray.shutdown()
    from raygen.sweep.outcome import ending

    return ending(args, results, run_dir, run_name, interrupted)


def prepare(args: argparse.Namespace):
    """Everything checked before Ray starts (each problem one line): the command line, the
    sweep resolved into its plan, trackers, storage, and the cluster address or the data."""
    from raygen.core.storage import check_writable, storage_uri
    from raygen.sweep import preflight
    from raygen.sweep.callbacks import trackers
    from raygen.sweep.plan import make_plan
    from raygen.sweep.spec import load_sweep

    preflight.check_args(args)
    plan = make_plan(load_sweep(args.name), args.smoke, preflight.overrides(args.set), args.stack,
                     preflight.only(args.only), args.budget)
    trackers.check(trackers.merged(plan.sweep.track, args.track), f"sweep {plan.sweep.name!r}")
    check_writable(storage_uri(args.storage))
    if args.address:
        preflight.check_address(args.address)
    else:  # the data and the device are this machine's: look before anything starts
        preflight.check_local_cpus(plan, args)
        check_precision(plan, args)
        preflight.check_data(plan, args)
        if preflight.uncompiled():
            print(preflight.BYTECODE_NOTE, file=sys.stderr, flush=True)
    return probed(plan, args)


def probed(plan, args: argparse.Namespace):
    """``stack: auto`` decided by a probe on the device the trials get (a cluster's GPU trials
    cannot be probed here: stacking pays on a GPU's launch-bound small steps, so they stack)."""
    from raygen.data import data_root
    from raygen.engine.trial import pick_device
    from raygen.sweep.plan import probe_stacks
    from raygen.sweep.tuner import requested

    if plan.sweep.stack != "auto" or args.resume:
        return plan
    cpus, gpus = requested(plan, args)
    device = pick_device(gpus)  # where the trials train when they run on this machine
    if args.address and gpus > 0 and device.type != "cuda":
        return dataclasses.replace(plan, probed=["stacked without a probe: the trials get the cluster's GPUs, where "
                                                 "a stack of small steps pays, and this machine has none to probe"])
    if args.address and not (args.data_root or os.environ.get("RAYGEN_DATA_ROOT")):
        return dataclasses.replace(plan, probed=["stacked without a probe: the data is the cluster's (give "
                                                 "--data-root to probe on this machine)"])
    return probe_stacks(plan, device, str(data_root(args.data_root)), threads=max(1, int(cpus)))


def check_precision(plan, args: argparse.Namespace) -> None:
    """Every precision the plan trains in, on the device its trials get on this machine (a
    cluster's workers check their own when they build the trial)."""
    from raygen.engine import precision
    from raygen.engine.trial import pick_device
    from raygen.sweep.tuner import requested

    _, gpus = requested(plan, args)
    device = pick_device(gpus)
    for p in sorted({train.train_precision for train, _, _ in plan.splits}):
        precision.check(p, device)


def tuner_for(plan, args: argparse.Namespace, ray, base: str, run_name: str):
    """(the Tuner, the resources each trial asks for)."""
    from ray import tune

    from raygen.data import data_root
    from raygen.sweep.liveness import start_beats
    from raygen.sweep.trainable import GenerativeTrainable
    from raygen.sweep.tuner import build_tuner, resources

    res = resources(plan, args, ray.cluster_resources())
    args.beats = start_beats()  # the trials' heartbeats (liveness.py), for the run's whole life
    root = str(data_root(args.data_root)) if (args.data_root or not args.address) else None
    trainable = tune.with_resources(tune.with_parameters(GenerativeTrainable, data_root=root, sweep_dir=base), res)
    return build_tuner(plan, args, trainable, base, run_name), res


def execute(plan, args: argparse.Namespace, tuner, base: str, run_name: str, repaired: list[str], res: dict,
            ray, ray_start_s: float):
    """Run the tuner and write its results (Parquet, the console's end); (results, interrupted)."""
    from raygen.sweep.outcome import disk_note, resume_command
    from raygen.sweep.tuner import fit, signals_deferred

    run_dir = os.path.join(base, run_name)
    t0 = time.perf_counter()
    try:
        try:
            grid, interrupted = fit(tuner)
        except AttributeError as exc:
            if not args.resume or not type(getattr(exc, "obj", None)).__module__.startswith("ray.tune"):
                raise  # raygen's own, or a new run's: a bug, whose traceback stays
            # Ray restores its tuner by updating an object's attributes from tuner.pkl: a pickle that
            # is not Ray's state (one --trust-run vouched for) leaves them missing until fit reads them
            raise RaygenError(f"--resume: Ray's state in {run_dir} is not a run Ray Tune can continue "
                              f"(AttributeError: {exc}); start the sweep afresh") from None
        wall = time.perf_counter() - t0
        with signals_deferred("raygen: writing the results first (a few seconds)"):
            results = collect(plan, args, grid, interrupted, wall, run_dir, run_name, repaired, res, ray, ray_start_s)
        return results, interrupted
    except (OSError, EOFError, json.JSONDecodeError) as exc:  # Ray's state or a trial's files unwritable
        again = resume_command(args, run_name, retry=True)
        raise RaygenError(f"the run could not be completed ({type(exc).__name__}: "
                          f"{str(exc).strip().splitlines()[0][:300]}){disk_note(base, again)}") from None


def collect(plan, args, grid, interrupted: bool, wall: float, run_dir: str, run_name: str, repaired: list[str],
            res: dict, ray, ray_start_s: float):
    """The rows of Ray's results, written (Parquet) and said (the console's end)."""
    from raygen.sweep.callbacks.runstate import WRITTEN
    from raygen.sweep.collect import add_checkpoint_tally, add_unstarted, benchmark_line, rows_from_grid, write_results
    from raygen.sweep.outcome import say_results

    results, history = rows_from_grid(grid, plan.sweep.name, run_name, run_dir, interrupted)
    if plan.is_grid and (interrupted or repaired):
        results = add_unstarted(results, plan.configs, plan.sweep.name, run_name,
                                *(["interrupted"] if interrupted else ["failed", LOST]))
    results = add_checkpoint_tally(results, WRITTEN.get(run_dir, {}))
    notes = write_results(results, history, run_dir, plan.sweep.paper, getattr(args, "provenance", None))
    slots = max(1, int(min(ray.cluster_resources().get("CPU", 1) // max(res["cpu"], 1e-9),
                           args.max_concurrent or plan.sweep.max_concurrent or 10**6)))
    line = benchmark_line(results, wall, slots, resumed=bool(args.resume), ray_start_s=ray_start_s)
    say_results(args, plan, results, notes, run_dir, line)
    return results


def repair_state(run_dir: str, trust: bool = False) -> list[str]:
    """Put back the last good, signed copy of Ray's state files a full disk damaged, or that
    changed after raygen signed them (local runs)."""
    from raygen.core.storage import is_remote
    from raygen.sweep.callbacks.runstate import repair

    if is_remote(run_dir) or not os.path.isdir(run_dir):
        return []
    restored = repair(run_dir, trust)
    for name, why in restored:
        print(f"raygen: {name} was {why}; put back raygen's last signed copy", file=sys.stderr)
    return [name for name, _ in restored]


if __name__ == "__main__":
    sys.exit(main())
