"""Atomic checkpoints: written under a temporary name, then renamed into place, so a crash
mid-write never leaves a truncated file where a good one was, and a full disk leaves no
temporary file behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from avbench.results.records import write_bytes_atomic


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    # Not fsynced: the rename already protects against a crashed process, and syncing hundreds
    # of megabytes every epoch would stall training; a lost last.pt only costs an epoch.
    write_bytes_atomic(path, lambda handle: torch.save(state, handle), durable=False)


def load_checkpoint(path: Path) -> dict[str, Any]:
    # weights_only: a checkpoint is data, never code.
    return torch.load(path, map_location="cpu", weights_only=True)
