"""How many cores this process may use, and torch's intra-op threads capped for a scope.

Some ops are too small to share between threads (per-file features, an RNN's time steps, a
small MLP): the threads only meet at barriers, and on a busy machine each barrier waits for a
descheduled thread. Never imports torch: with torch not loaded there is nothing to cap."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under taskset or Slurm),
    which os.cpu_count() ignores."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextlib.contextmanager
def capped_torch_threads(limit: int | None) -> Iterator[None]:
    """At most `limit` intra-op threads inside the block (None: unchanged), restored after."""
    torch = sys.modules.get("torch")
    if torch is None or not limit:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, limit))
    try:
        yield
    finally:
        torch.set_num_threads(before)
