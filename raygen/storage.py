"""Where runs live: a local folder, or ``s3://`` / ``gs://`` (any URI pyarrow.fs knows).

Ray Tune writes trial state there itself; raygen only lists runs and writes the Parquet
files, both through ``pyarrow.fs`` so one code path serves local disks and buckets.
"""
from __future__ import annotations

from pathlib import Path

from pyarrow import fs as pafs


def is_remote(uri: str) -> bool:
    return "://" in str(uri) and not str(uri).startswith("file://")


def storage_uri(storage: str) -> str:
    """Local paths become absolute (Ray Tune needs that); URIs are kept."""
    return str(storage) if "://" in str(storage) else str(Path(storage).expanduser().resolve())


def join(base: str, *parts: str) -> str:
    return "/".join([str(base).rstrip("/"), *parts])


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), uri


def list_runs(base: str) -> list[str]:
    """Run folders under ``<storage>/<sweep>`` that Ray Tune can restore, oldest first."""
    fs, path = filesystem(base)
    try:
        infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    except OSError:
        return []
    runs = [i.base_name for i in infos if i.type == pafs.FileType.Directory]
    ok = fs.get_file_info([f"{path}/{r}/tuner.pkl" for r in runs])
    return sorted(r for r, i in zip(runs, ok) if i.type == pafs.FileType.File)


def write_text(uri: str, text: str) -> None:
    fs, path = filesystem(uri)
    with fs.open_output_stream(path) as f:
        f.write(text.encode())
