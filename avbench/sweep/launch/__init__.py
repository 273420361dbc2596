"""How a sweep's trials get processes: local.py starts `--workers N` processes on this machine,
torchrun.py makes every rank of a torchrun / accelerate launch train each trial together."""

from __future__ import annotations

import os

PARENT_ENV = "AVBENCH_SWEEP_PARENT"  # set in each --workers process: its parent's pid


def started_by_parent() -> bool:
    """This process is one of a parent sweep's --workers (the parent reports for all)."""
    return bool(os.environ.get(PARENT_ENV))
