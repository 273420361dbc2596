"""Atomic checkpoints: written under a temporary name, then renamed into place, so a crash
mid-write never leaves a truncated file where a good one was, and a full disk leaves no
temporary file behind. A file damaged anyway (a copy cut short, a flipped byte, a disk fault)
is reported in one line naming it (DamagedCheckpoint), never with torch's traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from avbench.errors import AvbenchError
from avbench.results.records import write_bytes_atomic


class DamagedCheckpoint(AvbenchError):
    """A checkpoint file that torch cannot read (truncated, not a checkpoint, holding code)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"checkpoint {path} is damaged or not a PyTorch checkpoint ({reason})")
        self.path = path


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    # Not fsynced: the rename already protects against a crashed process, and syncing hundreds
    # of megabytes every epoch would stall training; a lost last.pt only costs an epoch.
    write_bytes_atomic(path, lambda handle: torch.save(state, handle), durable=False)


def load_checkpoint(path: Path) -> dict[str, Any]:
    # weights_only: a checkpoint is data, never code.
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise  # a missing file or a disk error: the error boundary names it
    except Exception as exc:  # truncated zip, garbage, a pickle that would run code
        lines = str(exc).strip().splitlines()
        raise DamagedCheckpoint(path, lines[0][:200] if lines else type(exc).__name__) from None
    if not isinstance(saved, dict) or not isinstance(saved.get("model"), dict):
        raise DamagedCheckpoint(path, "no model weights in it")
    return saved
