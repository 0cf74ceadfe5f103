"""``python -m raygen.sweep NAME``: see ``raygen.sweep.cli``."""
import atexit
import os
import sys

_status: list[int] = []


def _leave() -> None:
    """Registered before anything else, so it runs last of the exit handlers (Ray's shutdown, the
    trackers' flushes, temporary folders: all done by then): it skips only the interpreter's own
    teardown of torch's, Ray's and pandas's modules, a second of every command on this project's
    2-core machine, for nothing a user sees. Only after ``main`` returned its status."""
    if _status:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_status[0])


atexit.register(_leave)

from raygen.sweep.cli import main  # noqa: E402  (after the handler: every later one runs before it)

_status.append(main())
sys.exit(_status[0])
