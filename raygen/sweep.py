"""CLI: ``python -m raygen.sweep NAME`` -> Ray Tune -> Parquet (-> report).

Runs on the cluster named by ``--address`` (``auto``, ``ray://host:10001``), else on a
local Ray started here, whose workers reuse this very Python environment (Ray's
``uv run`` integration would rebuild the whole environment from uv.lock per session;
that is only worth it on a cluster, where ``cluster.yaml`` installs raygen itself).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .errors import RaygenError
from .sweepfile import Sweep, available, load_sweep

DEFAULT_STORAGE = "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m raygen.sweep", description=__doc__.splitlines()[0])
    p.add_argument("name", nargs="?", help="a sweep in sweeps/ (see --list) or a path to a sweep YAML")
    p.add_argument("--list", action="store_true", help="list the sweeps and exit")
    p.add_argument("--smoke", action="store_true", help="shrink every trial (1 epoch, a few batches)")
    p.add_argument("--data-root", help="dataset folder (else $RAYGEN_DATA_ROOT, else ~/.cache/raygen/data)")
    p.add_argument("--storage", default=os.environ.get("RAYGEN_STORAGE", DEFAULT_STORAGE),
                   help="where runs are stored: a local path, s3://... or gs://... (default: ./results)")
    p.add_argument("--address", help="Ray cluster to join: auto, ray://host:10001 (default: start a local Ray)")
    p.add_argument("--resume", nargs="?", const="latest", metavar="RUN",
                   help="continue an interrupted run (default: the latest run of this sweep)")
    p.add_argument("--cpus-per-trial", type=float)
    p.add_argument("--gpus-per-trial", type=float, help="may be fractional: 0.25 packs 4 trials per GPU")
    p.add_argument("--max-concurrent", type=int)
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value in every trial (YAML value), e.g. --set epochs=3")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    return p.parse_args(argv)


def overrides(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise RaygenError(f"--set takes KEY=VALUE, got {pair!r}")
        k, v = pair.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def run_dir_for(storage: str, sweep: str, resume: str | None, smoke: bool) -> tuple[str, str]:
    base = os.path.join(_local(storage), sweep)
    if resume:
        runs = sorted(p.name for p in Path(base).glob("*") if (p / "tuner.pkl").exists()) if "://" not in base else []
        if resume != "latest":
            return base, resume
        if not runs:
            raise RaygenError(f"--resume: no run of {sweep!r} to resume under {base}")
        return base, runs[-1]
    return base, datetime.now().strftime("%Y%m%d-%H%M%S") + ("-smoke" if smoke else "")


def _local(storage: str) -> str:
    return storage if "://" in storage else str(Path(storage).expanduser().resolve())


def start_ray(address: str | None, num_cpus: int | None):
    if not address:
        # Must be set before Ray is imported: Ray reads it into a module constant.
        os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"
    import ray

    if ray.is_initialized():
        return ray, False
    if address:
        ray.init(address=address)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, configure_logging=True, logging_level="WARNING")
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

    path = os.path.join(base, run)
    if resume:
        if not tune.Tuner.can_restore(path):
            raise RaygenError(f"--resume: {path} holds no restorable run")
        return tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=True)
    scheduler = None
    if sweep.scheduler:
        from ray.tune.schedulers import ASHAScheduler

        asha = dict(sweep.scheduler.get("asha", {}))
        scheduler = ASHAScheduler(metric=asha.pop("metric", "loss"), mode=asha.pop("mode", "min"),
                                  time_attr="training_iteration", **asha)
    if sweep.search == "grid":
        configs = sweep.grid(smoke, sets)
        # Each grid point is one concrete, already validated config: evaluate them in order.
        # Tune needs every key in the space; a key a variant lacks stays None (= the default).
        # Values shared by every trial go into the space itself: Ray walks into the lists of a
        # preset (alpha: [1, 0.1, 0.01]) and cannot place their items on a None placeholder.
        same = {k: v for k, v in configs[0].items() if all(k in c and c[k] == v for c in configs)}
        space = {**{k: None for c in configs for k in c}, **same}
        points = [{k: v for k, v in c.items() if k not in same} for c in configs]
        search_alg, n = BasicVariantGenerator(points_to_evaluate=points), len(configs)
    else:
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch(metric=sweep.metric, mode=sweep.mode)
        space, n = sweep.param_space(smoke, sets), sweep.num_samples
    max_conc = args.max_concurrent if args.max_concurrent is not None else sweep.max_concurrent
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(search_alg=search_alg, scheduler=scheduler, num_samples=n,
                                    max_concurrent_trials=max_conc or None, reuse_actors=True),
        run_config=tune.RunConfig(
            name=run, storage_path=base, verbose=1,
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1, num_to_keep=2),
            failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
            sync_config=tune.SyncConfig(sync_artifacts=True)),
    )


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
    sweep = load_sweep(args.name)
    sets = overrides(args.set)
    sweep.check(args.smoke, sets)
    base, run_name = run_dir_for(args.storage, sweep.name, args.resume, args.smoke)
    run_dir = os.path.join(base, run_name)
    ray, started = start_ray(args.address, args.num_cpus)
    try:
        from ray import tune

        from .data import data_root
        from .results import benchmark_line, rows_from_grid, write_parquet
        from .trainable import GenerativeTrainable

        res = resources(sweep, args, ray.cluster_resources())
        root = str(data_root(args.data_root)) if (args.data_root or not args.address) else None
        trainable = tune.with_resources(
            tune.with_parameters(GenerativeTrainable, data_root=root, sweep_dir=base), res)
        tuner = build_tuner(sweep, args, trainable, base, run_name, bool(args.resume), args.smoke, sets)
        print(f"raygen: sweep {sweep.name!r} -> {run_dir}  (resources per trial: {res})", flush=True)
        t0 = time.perf_counter()
        grid = tuner.fit()
        wall = time.perf_counter() - t0
        results, history = rows_from_grid(grid, sweep.name, run_name, run_dir)
        write_parquet(results, os.path.join(run_dir, "results.parquet"))
        write_parquet(history, os.path.join(run_dir, "history.parquet"))
        slots = max(1, int(min(ray.cluster_resources().get("CPU", 1) // max(res["cpu"], 1e-9),
                               args.max_concurrent or sweep.max_concurrent or 10**6)))
        print(benchmark_line(results, wall, slots))
        counts = results["status"].value_counts().to_dict() if len(results) else {}
        print(f"results: {os.path.join(run_dir, 'results.parquet')}  ({len(results)} trials: {counts})")
        if not args.no_report:
            _report(run_dir)
    finally:
        if started:
            ray.shutdown()
    return 0


def _report(run_dir: str) -> None:
    try:
        from . import report
    except ImportError:  # the report module is optional at this stage
        return
    try:
        path = report.write_report(run_dir)
        print(f"report: {path}")
    except Exception as exc:  # a report problem must never lose the results already written
        print(f"warning: report failed ({type(exc).__name__}: {exc}); results are intact", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
