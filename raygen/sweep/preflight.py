"""What is checked before Ray starts: the command line, the cluster address, the data.

Each problem is one line (a ``RaygenError``) before any trial runs.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from raygen.core.errors import RaygenError
from raygen.sweep.spec import yaml_value


def overrides(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        k, sep, v = pair.partition("=")
        if not sep or not k.strip():
            raise RaygenError(f"--set takes KEY=VALUE, e.g. --set epochs=3; got {pair!r}")
        out[k.strip()] = yaml_value(v, f"--set {pair!r}: the value")
    return out


def only(pairs: list[str]) -> dict[str, list[Any]]:
    """``--only KEY=V1,V2`` -> {KEY: [V1, V2]} (each value read as YAML, as ``--set`` reads it)."""
    out: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise RaygenError(f"--only takes KEY=VALUE[,VALUE...], e.g. --only model=vae_gan; got {pair!r}")
        out.setdefault(key.strip(), []).extend(yaml_value(v, f"--only {pair!r}: a value") for v in values.split(","))
    return out


def check_args(args: argparse.Namespace) -> None:
    """The command line's numbers and names, before anything starts."""
    if not str(args.storage).strip():  # an empty --storage or $RAYGEN_STORAGE: the current folder, unasked
        raise RaygenError("--storage is empty (or $RAYGEN_STORAGE is set to nothing); give a folder or a URI, "
                          "or leave both out for ./results")
    for name, low, strict in (("cpus_per_trial", 0, True), ("gpus_per_trial", 0, False), ("max_concurrent", 0, False),
                              ("num_cpus", 0, True)):
        v = getattr(args, name)
        if v is not None and (not math.isfinite(v) or (v <= low if strict else v < low)):
            bound = f"{'>' if strict else '>='} {low}"
            raise RaygenError(f"--{name.replace('_', '-')} {v:g} must be a finite number {bound}")
    for flag, what in (("retry_failed", "reruns the failed trials of a run"),
                       ("trust_run", "vouches for a run folder to resume")):
        if getattr(args, flag, False) and not getattr(args, "resume", None):
            raise RaygenError(f"--{flag.replace('_', '-')} {what}: give it with --resume [RUN]")


def check_local_cpus(plan, args: argparse.Namespace) -> None:
    """A trial asking for more CPUs than the local Ray will have would wait forever: refused
    before Ray starts. Ray counts the machine's CPUs, lowered by a container's quota (which its
    own count, after its start, catches); ``--num-cpus`` sets them."""
    from raygen.sweep.tuner import requested

    cpus, _ = requested(plan, args)
    total = args.num_cpus or os.cpu_count() or 1
    if cpus > total:
        source = f"--num-cpus {args.num_cpus}" if args.num_cpus else "this machine's"
        raise RaygenError(f"cpus_per_trial={cpus:g} exceeds the local Ray's CPUs ({total}, {source}); lower it "
                          f"with --cpus-per-trial, or run on a cluster (--address)")


CONNECT_TIMEOUT_S = 10.0


def reachable(host: str, port: int, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + empty SETTINGS


def speaks_grpc(host: str, port: int, timeout: float = 5.0) -> bool:
    """Whether the server at host:port answers as Ray's GCS and client server do (gRPC, so
    HTTP/2): its first frame a SETTINGS frame. An HTTP/1 server (the dashboard, a web app)
    answers otherwise or not at all, where Ray would wait for minutes."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(H2_PREFACE)
            head = b""
            while len(head) < 9:
                chunk = s.recv(9 - len(head))
                if not chunk:
                    break
                head += chunk
    except OSError:
        return False
    return len(head) == 9 and head[3] == 0x04  # frame type 4: SETTINGS


def check_address(address: str) -> None:
    """Fail within seconds, with one line, when ``--address`` names no reachable cluster (Ray
    itself would wait for minutes)."""
    target = address
    if address == "auto":
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        target = os.environ.get("RAY_ADDRESS") or (current.read_text().strip() if current.exists() else "")
        if not target:
            raise RaygenError("--address auto: no Ray cluster is running on this machine; start one with "
                              "`ray start --head`, give --address HOST:PORT, or leave --address out for a local Ray")
    if target.startswith("ray://") and importlib.util.find_spec("grpc") is None:
        raise RaygenError(f"--address {address}: ray:// needs Ray's client (grpcio), which is not installed here; "
                          f"run `uv sync` with this project's lock, or `pip install 'ray[client]'`")
    scheme = target.split("://", 1)[0] if "://" in target else ""
    if scheme not in ("", "ray"):
        raise RaygenError(f"--address {address}: {scheme}:// is no Ray address (the dashboard's http:// is not one); "
                          f"give auto, HOST:PORT (the head's GCS, as `ray start --head` prints it) or ray://HOST:10001")
    hostport = target.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise RaygenError(f"--address {address}: give auto, HOST:PORT or ray://HOST:10001")
    if not 0 < int(port) < 65536:
        raise RaygenError(f"--address {address}: port {port} is out of range (1-65535)")
    try:
        socket.getaddrinfo(host, int(port))
    except (OSError, UnicodeError) as exc:
        why = getattr(exc, "strerror", None) or type(exc).__name__  # unknown name, or no DNS answer just now
        raise RaygenError(f"--address {address}: the host {host!r} cannot be looked up here ({why}); check its "
                          f"spelling, or give its IP address") from None
    if not reachable(host, int(port)):
        raise RaygenError(f"--address {address}: nothing answers at {host}:{port} within {CONNECT_TIMEOUT_S:g} s; "
                          f"is the cluster up (`ray status` on its head) and the port open to this machine?")
    if not speaks_grpc(host, int(port)):
        raise RaygenError(f"--address {address}: {host}:{port} answers, but not as Ray (no gRPC there: the "
                          f"dashboard's port, or another server?); give the head's GCS address (HOST:6379, as "
                          f"`ray start --head` prints it) or ray://HOST:10001")


def check_data(plan, args: argparse.Namespace) -> None:
    """Load each dataset the sweep trains on once (downloading it if it can): absent data, or
    a truncated or garbage file, is one line before Ray starts. ``--skip-missing-data``: the
    trials of an absent dataset run and fail on their own (recorded, not retried)."""
    from raygen.core.errors import DataMissingError
    from raygen.data import data_root, load_data

    root = data_root(args.data_root)
    seen = set()
    for train, _, model_cfg in plan.splits if plan.is_grid else []:
        # every setting that cuts the data (holdout, validation, limit): a size that does not fit is one line now
        key = (train.dataset, train.split, train.eval_split, train.holdout, train.validation, train.limit)
        if key in seen:
            continue
        seen.add(key)
        try:
            load_data(train.dataset, split=train.split, eval_split=train.eval_split, holdout=train.holdout,
                      root=root, data_range=model_cfg.data_range, quiet=False, validation=train.validation,
                      limit=train.limit or None)
        except DataMissingError as exc:
            if not args.skip_missing_data:
                raise RaygenError(f"{exc} (or run the other trials with --skip-missing-data)") from None
            print(f"note: {train.dataset} is missing; its trials will fail (--skip-missing-data)", flush=True)


def uncompiled(module: str = "torch") -> bool:
    """Whether every process that imports ``module`` compiles it from source: its bytecode is not
    there and Python will not write it (``PYTHONDONTWRITEBYTECODE``, as many containers and CI
    machines set, or a read-only environment)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return False
    if os.path.exists(importlib.util.cache_from_source(spec.origin)):
        return False
    return bool(os.environ.get("PYTHONDONTWRITEBYTECODE")) or not os.access(os.path.dirname(spec.origin), os.W_OK)


BYTECODE_NOTE = ("note: this environment holds no compiled bytecode and Python writes none here: each of the "
                 "sweep's processes (the driver, Ray's, a worker per trial slot) compiles torch and Ray from "
                 "source, seconds apiece; `uv sync --compile-bytecode` once removes that")
