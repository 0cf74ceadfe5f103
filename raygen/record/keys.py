"""Every key a trial reports, and what kind of value it is, in the style of Ray Tune's
``ray/tune/result.py``: constants and sets, one place.

The fixed keys (the trainer's, the evaluation harness's, the sweep's) are named here. Metric
columns are declared where they are produced (a metric family's or a model's ``Column``,
``record.columns``, which carries its kind); the numbers a model reports of its own
(losses, hook values) are declared on the model class (``GenerativeModel.reports``).
``kind_of`` gives any column's kind from those declarations and the run's configuration
columns; the sweep writes every result column's kind into the run's metadata, so the
report and the Parquet typing read kinds, not name patterns. Plain Python: no torch, no Ray.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from raygen.record.transport import TRANSPORT_KEYS


class Kind:
    """What a column is. Strings, so they travel in the run's JSON metadata."""

    CONFIG = "config"  # a setting of the trial (from the sweep file or a default)
    METRIC = "metric"  # a declared measure of the trained model (``Column``)
    LOSS = "loss"  # the training's own numbers per epoch: losses, a model's view of its training
    TIME = "time"  # a cost: seconds (and the checkpoints' megabytes); float
    COUNT = "count"  # an integer: epochs, batches, parameters, samples
    IMAGE = "image"  # a picture's path, relative to the run folder
    BOOKKEEPING = "bookkeeping"  # where and how it ran: device, splits, flags, errors of the metrics
    STATUS = "status"  # who the trial is and how it ended: ids, status, error
    TRANSPORT = "transport"  # raygen's own encodings across Ray (``record.transport``): never a column


KINDS = (Kind.CONFIG, Kind.METRIC, Kind.LOSS, Kind.TIME, Kind.COUNT, Kind.IMAGE, Kind.BOOKKEEPING, Kind.STATUS,
         Kind.TRANSPORT)

# --- who the trial is and how it ended -------------------------------------------------
SWEEP = "sweep"
RUN = "run"
TRIAL_ID = "trial_id"  # Ray's own (ray.tune.result.TRIAL_ID); a stack's member: "<stack_id>-<i>"
STATUS = "status"
ERROR = "error"
TRIAL_DIR = "trial_dir"
STACK_ID = "stack_id"  # the Ray trial a stacked member trained in
DONE = "done"  # Ray's own (ray.tune.result.DONE): a result that ends the trial
SHOULD_CHECKPOINT = "should_checkpoint"  # Ray's own: asks Ray Tune to save a checkpoint
CONVERGED = "converged"  # a model ends its training early (GAE's delta)
ROW_KEYS = (SWEEP, RUN, TRIAL_ID, STATUS, ERROR)  # the first columns of every row

# values of STATUS
COMPLETED, DIVERGED, FAILED = "completed", "diverged", "failed"
STOPPED, RUNNING, INTERRUPTED, PENDING = "stopped", "running", "interrupted", "pending"
OK = (COMPLETED, STOPPED, RUNNING)  # statuses whose metrics count
PROBLEMS = (FAILED, DIVERGED)

# --- costs ------------------------------------------------------------------------------
TRAIN_TIME_S = "train_time_s"
EPOCH_TIME_S = "epoch_time_s"
EVAL_TIME_S = "eval_time_s"
WALL_TIME_S = "wall_time_s"  # Ray's time_total_s of the trial
STARTUP_S = "startup_s"
IMAGES_S = "images_s"
SAMPLER_FIT_S = "sampler_fit_s"
CHECKPOINT_MB = "checkpoint_mb"
# CPU-seconds of every thread of the trial's process: unlike wall time, not stretched by other
# trials sharing the cores, so the time to compare models by where trials ran side by side
TRAIN_CPU_S = "train_cpu_s"
EPOCH_CPU_S = "epoch_cpu_s"

# --- counts -----------------------------------------------------------------------------
EPOCH = "epoch"
BATCHES = "batches"
NUM_PARAMS = "num_params"
DIVERGED_EPOCH = "diverged_epoch"
RESUMED_FROM_EPOCH = "resumed_from_epoch"
CHECKPOINTS = "checkpoints"
EVAL_SAMPLES = "eval_samples"
STACKED = "stacked"  # how many trials shared the stacked model
TORCH_THREADS = "torch_threads"  # the threads a trial trained with
TRIALS_BESIDE_MAX = "trials_beside_max"  # the most other trials seen training on its node

# --- bookkeeping ------------------------------------------------------------------------
DEVICE = "device"
EVAL_SPLIT = "eval_split"
TRAIN_SPLIT = "train_split"
METRIC_ERRORS = "metric_errors"
NODE_ID = "node_id"
FIRST_ON_WORKER = "first_on_worker"
HOSTNAME = "hostname"  # Ray's own, kept in the row
NODE_IP = "node_ip"  # Ray's own, kept in the row
SAMPLER_LOGLIK = "sampler_loglik"
SAMPLER_CONVERGED = "sampler_converged"
TRIALS_BESIDE_MEAN = "trials_beside_mean"  # ... and their mean over the trial's steps
HEALTH = "health"  # did the model train? ok | warning | failed (metrics.health)
HEALTH_REASON = "health_reason"
VAL_SPLIT = "val_split"  # the validation images a budget sweep chooses on
RESTARTED = "restarted"  # why a resumed trial began again from epoch 0 (its checkpoint unusable)
VALIDATION_PREFIX = "val_"  # every metric measured again on the validation split

# --- images -----------------------------------------------------------------------------
SAMPLES_PNG = "samples_png"
RECONSTRUCTIONS_PNG = "reconstructions_png"

LOSS = "loss"  # every model's total training loss


def params_key(network: str) -> str:
    """Parameters of one of the model's networks (``GenerativeModel.param_counts``)."""
    return f"{PARAMS_PREFIX}{network}"


def family_time_key(family: str) -> str:
    """Seconds one metric family took, its share of ``eval_time_s``."""
    return f"eval_{family}_s"


PARAMS_PREFIX = "params_"
# The file a model's ``artifacts`` hook writes is named by its key's suffix (the hook's
# documented convention): images are the one family of keys told by name.
IMAGE_SUFFIX = "_png"

FIXED: dict[str, str] = {
    **dict.fromkeys((SWEEP, RUN, TRIAL_ID, STATUS, ERROR, TRIAL_DIR, STACK_ID, DONE, SHOULD_CHECKPOINT,
                     CONVERGED), Kind.STATUS),
    **dict.fromkeys((TRAIN_TIME_S, EPOCH_TIME_S, EVAL_TIME_S, WALL_TIME_S, STARTUP_S, IMAGES_S, SAMPLER_FIT_S,
                     CHECKPOINT_MB, TRAIN_CPU_S, EPOCH_CPU_S), Kind.TIME),
    **dict.fromkeys((EPOCH, BATCHES, NUM_PARAMS, DIVERGED_EPOCH, RESUMED_FROM_EPOCH, CHECKPOINTS, EVAL_SAMPLES,
                     STACKED, TORCH_THREADS, TRIALS_BESIDE_MAX), Kind.COUNT),
    **dict.fromkeys((DEVICE, EVAL_SPLIT, TRAIN_SPLIT, METRIC_ERRORS, NODE_ID, FIRST_ON_WORKER, HOSTNAME, NODE_IP,
                     SAMPLER_LOGLIK, SAMPLER_CONVERGED, TRIALS_BESIDE_MEAN, HEALTH, HEALTH_REASON, VAL_SPLIT,
                     RESTARTED),
                    Kind.BOOKKEEPING),
    **dict.fromkeys((SAMPLES_PNG, RECONSTRUCTIONS_PNG), Kind.IMAGE),
    LOSS: Kind.LOSS,
    **dict.fromkeys(TRANSPORT_KEYS, Kind.TRANSPORT),
}
TIMES = frozenset(k for k, v in FIXED.items() if v == Kind.TIME)
COUNTS = frozenset(k for k, v in FIXED.items() if v == Kind.COUNT)


def is_image(key: str) -> bool:
    return key.endswith(IMAGE_SUFFIX)


def kind_of(key: str, declared: Mapping[str, str], config: Iterable[str] = ()) -> str | None:
    """The kind of a result column: configuration, a fixed key, a declared one (``declared``:
    name -> kind, from the metric families' and models' declarations), a network's parameter
    count or an image; None: nobody declared it."""
    if key in config:
        return Kind.CONFIG
    if key in FIXED:
        return FIXED[key]
    if key in declared:
        return declared[key]
    if key.startswith(PARAMS_PREFIX):
        return Kind.COUNT
    if key.startswith(VALIDATION_PREFIX) and key[len(VALIDATION_PREFIX):] in declared:
        return declared[key[len(VALIDATION_PREFIX):]]  # a metric measured on the validation split
    if is_image(key):
        return Kind.IMAGE
    return None


def kinds(keys: Iterable[str], declared: Mapping[str, str], config: Iterable[str] = ()) -> dict[str, str]:
    """name -> kind of every column in ``keys`` that has one."""
    config = set(config)
    out = {k: kind_of(k, declared, config) for k in keys}
    return {k: v for k, v in out.items() if v is not None}


def of_kind(kinds_by_name: Mapping[str, str], *wanted: str) -> list[str]:
    """The names whose kind is one of ``wanted``, in order."""
    return [k for k, v in kinds_by_name.items() if v in wanted]
