"""Free space for checkpoints: checked before a run writes its first one, so a full disk stops
a sweep cleanly (the trial re-queued, see avbench.errors.OutOfSpace) instead of failing trial
after trial on half-written files.

A checkpoint holds the model and the optimizer's state; a run keeps two (last.pt and best.pt)
and writes each through a temporary copy, so it needs about three checkpoints' worth, plus a
reserve for records, logs and the study: AVBENCH_FREE_SPACE_RESERVE_MB (default 100) megabytes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from avbench.errors import ConfigError, OutOfSpace

RESERVE_ENV = "AVBENCH_FREE_SPACE_RESERVE_MB"
DEFAULT_RESERVE_MB = 100
CHECKPOINT_COPIES = 3  # last.pt, best.pt and the temporary file of the one being written
MB = 1024 * 1024


def state_bytes(state) -> int:
    """Bytes of every tensor in a (nested) state dict."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(state_bytes(value) for value in state.values())
    if isinstance(state, list | tuple):
        return sum(state_bytes(value) for value in state)
    return 0


def reserve_bytes() -> int:
    raw = os.environ.get(RESERVE_ENV, "")
    try:
        return int(float(raw) * MB) if raw else DEFAULT_RESERVE_MB * MB
    except ValueError:
        raise ConfigError(f"{RESERVE_ENV}={raw!r} is not a number of megabytes") from None


def check_free_space(folder: Path, model: torch.nn.Module, optimizer) -> None:
    """Raise OutOfSpace when `folder` has less room than the run's checkpoints need."""
    checkpoint = state_bytes(model.state_dict()) + state_bytes(optimizer.state_dict())
    needed = CHECKPOINT_COPIES * checkpoint + reserve_bytes()
    existing = next((path for path in (folder, *folder.parents) if path.exists()), Path("."))  # not written yet
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise OutOfSpace(
            f"out of space: {folder} has {free / MB:.0f} MB free, the run's checkpoints need about "
            f"{needed / MB:.0f} MB; free some space (e.g. `avbench cache prune`) and re-run the same command to resume"
        )
