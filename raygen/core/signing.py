"""Files raygen wrote, told from files it did not: an HMAC-SHA256 of their bytes under a key
private to this user on this machine (``$RAYGEN_KEY``, else ``~/.raygen/key``; mode 0600).

Run folders and caches travel (a shared bucket, a colleague's results, a downloaded cache).
``--resume`` hands Ray's state in a run folder to Ray, which unpickles it, and a cached
classifier or reference statistics decide the metrics: a file that someone else put there
must neither run code nor change a number. Only what this key signed is used as it is.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from raygen.core.errors import RaygenError

_KEYS: dict[Path, bytes] = {}


def key_path() -> Path:
    return Path(os.environ.get("RAYGEN_KEY") or Path.home() / ".raygen" / "key").expanduser()


def _key() -> bytes:
    path = key_path()
    if path in _KEYS:
        return _KEYS[path]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # created once, by whichever process comes first; readable by its owner alone
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
        except FileExistsError:
            pass
        key = path.read_bytes()
    except OSError as exc:
        raise RaygenError(f"raygen's signing key {path} cannot be made or read ({exc.strerror}); "
                          f"set $RAYGEN_KEY to a file this user can write") from None
    if len(key) < 32:
        raise RaygenError(f"raygen's signing key {path} is damaged ({len(key)} bytes); delete it "
                          f"(files it signed will be recomputed or refused)")
    _KEYS[path] = key
    return key


def signature(data: bytes) -> str:
    return hmac.new(_key(), data, hashlib.sha256).hexdigest()


def is_signed(data: bytes, sig: str | None) -> bool:
    return isinstance(sig, str) and hmac.compare_digest(signature(data), sig)


def sig_path(path: str | os.PathLike) -> Path:
    """The signature of one file, beside it."""
    return Path(f"{path}.sig")


def file_is_signed(path: str | os.PathLike) -> bool:
    try:
        return is_signed(Path(path).read_bytes(), sig_path(path).read_text().strip())
    except OSError:
        return False
