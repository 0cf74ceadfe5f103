"""How many trials train beside this one on its node: a time is comparable only when it is
known whether the trial had its cores to itself.

Each running trial keeps an empty file named by its process id in the node's temporary
folder (one per raygen process, whichever sweep it belongs to); counting the files of live
processes counts the trials sharing the node's CPUs.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

FOLDER = Path(tempfile.gettempdir()) / "raygen-running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class Neighbours:
    """This process's mark, and the most and the mean of the other trials seen beside it."""

    def __init__(self, folder: Path = FOLDER):
        self.folder = folder
        self.mine = folder / str(os.getpid())
        self.seen: list[int] = []
        with contextlib.suppress(OSError):  # no mark, no count: the trial trains all the same
            folder.mkdir(parents=True, exist_ok=True)
            self.mine.touch()

    def restart(self) -> None:
        """A new trial on a reused actor counts afresh."""
        self.seen = []
        with contextlib.suppress(OSError):
            self.mine.touch()

    def look(self) -> dict[str, float]:
        """Count the others now; ``trials_beside_max`` / ``trials_beside_mean`` so far."""
        others = 0
        with contextlib.suppress(OSError):
            for f in self.folder.iterdir():
                if f.name.isdigit() and f != self.mine:
                    if _alive(int(f.name)):
                        others += 1
                    else:
                        with contextlib.suppress(OSError):
                            f.unlink()  # a process that ended without removing its mark
        self.seen.append(others)
        return {"trials_beside_max": max(self.seen), "trials_beside_mean": sum(self.seen) / len(self.seen)}

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.mine.unlink()
