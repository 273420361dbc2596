"""How an avbench process treats Python's cyclic garbage collector.

A sweep's start-up imports torch, Optuna with SQLAlchemy and W&B: several million objects
that live as long as the process. With the default thresholds (700, 10, 10) the collector
walks all of them again and again while they are being made, and once more at exit: ~1 s of
a tiny sweep's ~3 s of fixed cost on this machine (benchmarks/cli_startup.py). A larger
first threshold keeps collection going, just less often (a few MB more garbage at most), and
freezing the heap at exit lets the interpreter skip the last walk: by then tracking has
finished and every file avbench writes is closed by its own `with` block.
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 50, 50)  # for the whole process; Python's own are (700, 10, 10)


def collect_less_often() -> None:
    """Raise the collector's thresholds for the rest of the process (the CLI calls it before
    the heavy imports its commands make)."""
    gc.set_threshold(*THRESHOLDS)


def skip_final_collection() -> None:
    """Move every live object out of the collector's reach just before the process exits."""
    gc.freeze()
