"""The Task contract: list a dataset's labelled files in their split, and write a stand-in.

A task knows a dataset's published layout. It never decodes audio for training (that is
`avbench.data`) and never imports torch, so `avbench data synth` and `inspect` stay light.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from avbench.config import DataConfig

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Item:
    """One labelled example: the audio file, optional video file, its class and speaker."""

    audio: Path
    label: int
    speaker: str
    split: str
    video: Path | None = None


class Task:
    name: ClassVar[str]
    classes: ClassVar[tuple[str, ...]]
    modalities: ClassVar[tuple[str, ...]] = ("audio",)
    # One line that tells a user what directory tree the loader expects.
    layout: ClassVar[str]

    def items(self, root: Path, data: DataConfig) -> list[Item]:
        """Every usable example under `root`, with its split. Raises DatasetError when the
        layout is missing or empty."""
        raise NotImplementedError

    def synthesize(self, out: Path, *, size: str = "small", seed: int = 0) -> int:
        """Write a stand-in in the published layout with a learnable class signal.
        Returns the number of clips written."""
        raise NotImplementedError
