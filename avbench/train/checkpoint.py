"""Atomic checkpoints: written under a temporary name, then renamed into place, so a crash
mid-write never leaves a truncated file where a good one was."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    # weights_only: a checkpoint is data, never code.
    return torch.load(path, map_location="cpu", weights_only=True)
