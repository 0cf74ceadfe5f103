"""``python -m raygen.sweep NAME``: see ``raygen.sweep.cli``."""
import sys

from raygen.sweep.cli import main

sys.exit(main())
