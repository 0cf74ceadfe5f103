"""Where runs live: a local folder, or ``s3://`` / ``gs://`` (any URI pyarrow.fs knows).

Ray Tune writes trial state there itself; raygen lists runs and writes its own files
(Parquet, JSON, reports) through here, so one code path serves local disks and buckets.
Every write is atomic: locally a temporary file beside the target renamed over it (a
reader never sees half a file, a failed write leaves the old one); an object store's
single PUT is atomic by itself.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas and pyarrow load where a file is read or written, not before a sweep starts
    import pandas as pd
    from pyarrow import fs as pafs

PARQUET_META = b"raygen"  # schema metadata key: raygen's facts about a results file (JSON)


def is_remote(uri: str) -> bool:
    return "://" in str(uri) and not str(uri).startswith("file://")


def storage_uri(storage: str) -> str:
    """Local paths become absolute (Ray Tune needs that); URIs are kept."""
    return str(storage) if "://" in str(storage) else str(Path(storage).expanduser().resolve())


def join(base: str, *parts: str) -> str:
    return "/".join([str(base).rstrip("/"), *parts])


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    from pyarrow import fs as pafs

    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), uri


def list_runs(base: str) -> list[str]:
    """Run folders under ``<storage>/<sweep>`` that Ray Tune can restore, oldest first."""
    from pyarrow import fs as pafs

    fs, path = filesystem(base)
    try:
        infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    except OSError:
        return []
    runs = [i.base_name for i in infos if i.type == pafs.FileType.Directory]
    ok = fs.get_file_info([f"{path}/{r}/tuner.pkl" for r in runs])
    return sorted(r for r, i in zip(runs, ok) if i.type == pafs.FileType.File)


def check_writable(uri: str) -> None:
    """Fail now, with one line, if runs cannot be stored at ``uri``: an unknown scheme, a
    path that is a file, a folder that cannot be created or written (read-only, full)."""
    from raygen.core.errors import RaygenError

    if is_remote(uri):
        import pyarrow as pa
        from pyarrow import fs as pafs

        try:
            pafs.FileSystem.from_uri(uri)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, ValueError) as exc:
            raise RaygenError(f"--storage {uri}: {str(exc).splitlines()[0]}; use a local folder, s3://bucket/path "
                              f"or gs://bucket/path") from None
        return
    path = Path(uri)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".raygen-write-test-{os.getpid()}"
        probe.write_bytes(b"\0" * 4096)
        probe.unlink()
    except FileExistsError:
        raise RaygenError(f"--storage {uri} is a file, not a folder; give a folder for the runs") from None
    except OSError as exc:
        raise RaygenError(f"--storage {uri} cannot be written ({exc.strerror or exc}); free space or permissions "
                          f"there, or give another folder") from None


def new_run_dir(base: str, name: str) -> str:
    """A run folder under ``base`` named ``name``, created atomically: two sweeps started in the
    same second get ``name`` and ``name-2``. Object stores cannot create atomically: there the
    name gets a random suffix."""
    if is_remote(base):
        return f"{name}-{os.urandom(3).hex()}"
    Path(base).mkdir(parents=True, exist_ok=True)
    for i in range(1, 1000):
        candidate = name if i == 1 else f"{name}-{i}"
        try:
            (Path(base) / candidate).mkdir()
            return candidate
        except FileExistsError:
            continue
    raise OSError(f"no free run folder name under {base}")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """``write(tmp)`` into a temporary file beside ``path``, then renamed over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):  # a read-only folder answers EROFS even for a file never made
            tmp.unlink(missing_ok=True)
    return path


def write_bytes(uri: str | os.PathLike, data: bytes) -> str:
    if not is_remote(str(uri)):
        atomic_write(str(uri).removeprefix("file://"), lambda tmp: tmp.write_bytes(data))
        return str(uri)
    fs, path = filesystem(str(uri))
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(data)
    return str(uri)


def write_text(uri: str | os.PathLike, text: str) -> str:
    return write_bytes(uri, text.encode("utf-8"))


def write_parquet(df: pd.DataFrame, uri: str | os.PathLike, meta: dict[str, Any] | None = None) -> str:
    """``df`` as Parquet, with ``meta`` (JSON) in the schema metadata under ``PARQUET_META``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    if meta:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               PARQUET_META: json.dumps(meta).encode()})
    buf = io.BytesIO()
    # zstd: a sixth smaller than the default snappy on a long run's history, read as fast
    pq.write_table(table, buf, compression="zstd")
    return write_bytes(uri, buf.getvalue())


def read_parquet(path: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(frame, raygen's metadata: {} for files written without it)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(PARQUET_META)
    try:
        meta = json.loads(raw) if raw else {}
    except ValueError:
        meta = {}
    return table.to_pandas(), meta if isinstance(meta, dict) else {}
