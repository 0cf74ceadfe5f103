"""Ray itself: starting (or joining) it, the resources a trial asks for, the Ray Tune
``Tuner`` a plan becomes, and running it so that Ctrl-C stops it cleanly."""
from __future__ import annotations

import argparse
import contextlib
import functools
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

from raygen.core.errors import RaygenError
from raygen.sweep.callbacks import trackers
from raygen.sweep.plan import Plan


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
    imports = import_meanwhile()
    try:
        _init(ray, address, num_cpus, verbose)
    finally:
        imports.join()
    return ray, True


def _init(ray, address: str | None, num_cpus: int | None, verbose: bool) -> None:
    if address:
        try:
            ray.init(address=address, log_to_driver=verbose)
        except (ConnectionError, RuntimeError, TimeoutError, ValueError) as exc:  # Ray's "Failed to connect to GCS"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RaygenError(f"--address {address}: could not join the cluster ({first}); is it up "
                              f"(`ray status` on its head) and its port open to this machine?") from None
    else:
        keep_token_private()
        # "local": a Ray of its own, even when $RAY_ADDRESS or a `ray start` on this machine names
        # another (Ray would join that one, and refuse num_cpus with a traceback); --address joins
        with lean_head(log_monitor=verbose), own_sessions():
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, configure_logging=True,
                     log_to_driver=verbose, logging_level="WARNING" if verbose else "ERROR",
                     _system_config=NO_PRESTART)


# Ray starts a worker process per CPU ahead of need; Ray Tune's trial actors never use them (each
# asks for its own runtime_env, so gets a new process), and on a small machine their start takes
# CPU from the rest of Ray's (``lean_head``'s figures)
NO_PRESTART = {"enable_worker_prestart": False, "prestart_worker_first_driver": False}


@contextlib.contextmanager
def lean_head(log_monitor: bool):
    """A local Ray without the two Python services a sweep on one machine does not use: the
    autoscaler's monitor (nothing to scale) and, unless the workers' output is shown
    (``--verbose``), the log monitor that forwards it. Each one's start took CPU from Ray's
    own on this project's 2-core machine, and each waited out a one-second grace on
    ``ray.shutdown``: with ``NO_PRESTART``, 2.55 -> 2.10 s to start, 1.37 -> 0.34 s to stop
    (medians of 6, ``benchmarks/README.md``).
    ``ray.init`` has no switch for them; the node it starts reads them from its ``RayParams``,
    set here for the head node ``ray.init`` makes while this block runs."""
    import ray._private.node as ray_node

    plain = ray_node.Node

    class LeanNode(plain):
        def __init__(self, ray_params, head: bool = False, *args, **kwargs):
            if head:
                ray_params.no_monitor = True
                ray_params.include_log_monitor = log_monitor
            super().__init__(ray_params, head, *args, **kwargs)

    ray_node.Node = LeanNode
    try:
        yield
    finally:
        ray_node.Node = plain


@contextlib.contextmanager
def own_sessions():
    """The local Ray's processes (its GCS, raylet and the workers the raylet starts) in sessions of
    their own, out of the driver's process group: ``timeout``, a batch scheduler's stop or
    ``kill -- -PGID`` signal that whole group, and Ray's processes died with the driver's SIGTERM,
    so the driver could neither checkpoint its trials nor write its results (it waited 60 s for
    the dead GCS, then Ray aborted it). The driver now stops the sweep as on Ctrl-C. Only where
    the kernel ends them with the driver (Ray's fate sharing, ``PR_SET_PDEATHSIG`` on Linux):
    elsewhere Ray's reaper ends them by the driver's process group, which they must stay in."""
    import ray._private.services as services
    import ray._private.utils as ray_utils

    plain = services.ConsolePopen
    if sys.platform == "win32" or not ray_utils.detect_fate_sharing_support():
        yield
        return

    class OwnSession(plain):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, start_new_session=True, **kwargs)

    services.ConsolePopen = OwnSession
    try:
        yield
    finally:
        services.ConsolePopen = plain


# What the driver imports after Ray's start: to build the Tuner (Ray Tune, the trainable, the
# callbacks), to write the results (pandas), and what Ray Tune's usage tag imports as the fit starts
# (every logger integration it knows: mlflow, where installed, took a second on the trials' start)
TUNER_MODULES = ("ray.tune", "ray.tune.schedulers", "raygen.sweep.trainable", "raygen.sweep.callbacks.console",
                 "raygen.sweep.callbacks.runstate", "raygen.sweep.liveness", "raygen.sweep.collect",
                 "raygen.sweep.outcome", "ray.air._internal.usage", "ray.air.integrations.mlflow",
                 "ray.air.integrations.wandb", "ray.air.integrations.comet", "ray.tune.logger.aim")


def import_meanwhile(modules: tuple[str, ...] = TUNER_MODULES) -> threading.Thread:
    """``modules`` imported in a thread while the caller waits on ``ray.init``, which mostly waits for
    Ray's processes: Ray up with them imported in 2.5-3.4 s, against 3.9-5.1 s one after the other
    (this project's 2-core machine, 4 runs each). Started after the environment Ray reads at import
    is set (``start_ray``) and joined before ``start_ray`` returns."""
    import importlib

    def work() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # the main thread imports it again where it needs it, and says why it fails
                continue

    thread = threading.Thread(target=work, name="raygen-imports", daemon=True)
    thread.start()
    return thread


def keep_token_private() -> Path | None:
    """Ray turns token authentication on for a local cluster, but writes the token it creates
    (``~/.ray/auth_token``) readable by every user, and its servers listen on every interface:
    whoever reads the token could join. The token is written (or made) owner-only first, which
    Ray then uses. None when the token comes from the environment (nothing on disk to guard)."""
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_MODE", "token").lower() != "token":
        return None
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token").expanduser()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return path
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))  # as Ray's own generator: 256 bits
    return path


def requested(plan: Plan, args: argparse.Namespace) -> tuple[float, float]:
    """(CPUs, GPUs) each trial asks for: the command line's, else the sweep file's."""
    sweep = plan.sweep
    cpus = args.cpus_per_trial if args.cpus_per_trial is not None else float(sweep.resources["cpus_per_trial"])
    gpus = args.gpus_per_trial if args.gpus_per_trial is not None else float(sweep.resources["gpus_per_trial"])
    return cpus, gpus


def resources(plan: Plan, args: argparse.Namespace, cluster: dict[str, float]) -> dict[str, float]:
    """What each trial asks Ray for (``requested``). On this machine, GPUs it lacks are dropped
    (CPU-only) and CPUs it lacks refused; a cluster (``--address``) keeps the request, which its
    autoscaler meets by adding nodes (a head of ``CPU: 0`` runs no trial: dropping the GPUs
    there would leave the trials on CPUs of GPU nodes, or waiting)."""
    cpus, gpus = requested(plan, args)
    if args.address:
        if (gpus > 0 and cluster.get("GPU", 0) < gpus) or cluster.get("CPU", 0) < cpus:
            print(f"note: each trial asks for {cpus:g} CPU and {gpus:g} GPU; the cluster has {cluster.get('CPU', 0):g} "
                  f"CPU and {cluster.get('GPU', 0):g} GPU now: the trials wait for its autoscaler to add nodes "
                  f"(`ray status` on the head shows them; --gpus-per-trial 0 runs on CPUs)", flush=True)
        return {"cpu": cpus, "gpu": gpus}
    if gpus > 0 and cluster.get("GPU", 0) == 0:
        print(f"note: the sweep asks for {gpus} GPU per trial but Ray sees no GPU; running CPU-only.")
        gpus = 0.0
    if cpus > cluster.get("CPU", 1):
        raise RaygenError(f"cpus_per_trial={cpus} exceeds the {cluster.get('CPU')} CPUs Ray sees; lower it")
    return {"cpu": cpus, "gpu": gpus}


def build_tuner(plan: Plan, args: argparse.Namespace, trainable, base: str, run: str):
    """The Tuner of a new run, or of the run ``--resume`` names (restored from Ray's state)."""
    from ray import tune

    from raygen.sweep.callbacks.console import Console, trial_folder
    from raygen.sweep.callbacks.runstate import KeepState
    from raygen.sweep.liveness import Watchdog

    sweep, path = plan.sweep, os.path.join(base, run)
    if args.resume:
        if not tune.Tuner.can_restore(path):
            raise RaygenError(f"--resume: {path} holds no restorable run")
        # Finished trials (completed or failed) stay as they are; interrupted ones continue
        # from their last checkpoint.
        return tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True,
                                  resume_errored=bool(getattr(args, "retry_failed", False)))
    max_conc = args.max_concurrent if args.max_concurrent is not None else sweep.max_concurrent
    search_alg, space, n = search(plan, max_conc, getattr(args, "verbose", False))
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(search_alg=search_alg, scheduler=scheduler(plan), num_samples=n,
                                    trial_dirname_creator=functools.partial(trial_folder, plan.keys),
                                    max_concurrent_trials=max_conc or None, reuse_actors=True),
        run_config=tune.RunConfig(
            name=run, storage_path=base, verbose=1 if args.verbose else 0,
            callbacks=[KeepState(path), Watchdog(sweep.stall_seconds), Console(plan.keys, sweep.metric, n),
                       *trackers.callbacks(trackers.merged(sweep.track, args.track), sweep.name, plan.keys)],
            # the trainable asks for checkpoints itself, by the clock (trainable.py)
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=0, num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
            sync_config=tune.SyncConfig(sync_artifacts=True)),
    )


def scheduler(plan: Plan):
    """ASHA when the sweep asks for it; its rungs, grace_period and max_t count epochs (a Ray
    step may hold several)."""
    if not plan.sweep.scheduler:
        return None
    from ray.tune.schedulers import ASHAScheduler

    asha = dict(plan.sweep.scheduler.get("asha", {}))
    return ASHAScheduler(metric=asha.pop("metric", "loss"), mode=asha.pop("mode", "min"), time_attr="epoch", **asha)


def search(plan: Plan, max_conc: int, verbose: bool = False) -> tuple:
    """(search algorithm, param space, number of Ray trials)."""
    if plan.is_grid:
        from ray.tune.search.basic_variant import BasicVariantGenerator

        # Each grid point is one concrete, already validated config: evaluate them in order.
        # Tune needs every key in the space; a key a variant lacks stays None (= the default).
        configs = plan.tune_configs()
        line = plan.stack_line()
        if line:
            print(line, flush=True)
        space = {k: None for c in configs for k in c}
        # Ray honours max_concurrent_trials for a grid only when the generator is told too.
        return BasicVariantGenerator(points_to_evaluate=configs, max_concurrent=max_conc or 0), space, len(configs)
    if not verbose:  # Optuna's own "A new study created in memory" line is Ray's kind of output
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    algo = _final_metric_optuna()(metric=plan.sweep.metric, mode=plan.sweep.mode)
    return algo, param_space(plan), plan.sweep.num_samples


def param_space(plan: Plan) -> dict:
    """Ray Tune's search space for an Optuna sweep (flat keys, Tune domains)."""
    from ray import tune

    (spec,) = plan.sweep.variant_specs(plan.smoke, plan.sets)
    make = {"uniform": lambda a: tune.uniform(*a), "loguniform": lambda a: tune.loguniform(*a),
            "randint": lambda a: tune.randint(*a), "choice": lambda a: tune.choice(a)}
    return {k: make[next(iter(v))](next(iter(v.values()))) if isinstance(v, dict) else v for k, v in spec.items()}


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


def _again(sig, frame):  # a second Ctrl-C while the first stop is under way: stop at once
    raise KeyboardInterrupt


def _as_ctrl_c(sig, frame):  # SIGTERM (a batch scheduler, docker stop) stops the sweep as Ctrl-C does
    os.kill(os.getpid(), signal.SIGINT)


def fit(tuner):
    """``tuner.fit()`` and whether Ctrl-C (SIGINT) or SIGTERM stopped it. Ray Tune stops cleanly on
    SIGINT (trials checkpointed, experiment state saved) and puts back the handler it found, ours:
    so finding ours in place afterwards says it happened."""
    previous = signal.signal(signal.SIGINT, _again)
    previous_term = signal.signal(signal.SIGTERM, _as_ctrl_c)
    try:
        grid = tuner.fit()
        return grid, signal.getsignal(signal.SIGINT) is _again
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)


@contextlib.contextmanager
def signals_deferred(note: str):
    """Ctrl-C and SIGTERM wait (with ``note`` said once) while the block runs: the results of a
    stopped sweep take seconds to write, and are what the stop was for."""
    said = []

    def wait(sig, frame):
        if not said:
            print(note, file=sys.stderr, flush=True)
            said.append(sig)

    previous = {s: signal.signal(s, wait) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
