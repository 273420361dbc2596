"""The Task contract: list a dataset's labelled files in their split, and write a stand-in.

A task knows a dataset's published layout. It never decodes audio for training (that is
`avbench.data`) and never imports torch, so `avbench data synth` and `inspect` stay light.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from avbench.config import DataConfig
from avbench.errors import DatasetError

SPLITS = ("train", "val", "test")
UNKNOWN_SPEAKER = "unknown"  # Item.speaker when the layout does not say who speaks
# The DataConfig fields only some tasks honour: the value that means "not used", and why a
# task that does not honour one refuses another value.
OPTIONAL_DATA_FIELDS = {
    "fold": (1, "it has no predefined folds"),
    "speaker_regex": (None, "its speakers come from its layout"),
    "label_source": ("filename", "its labels come only from its file names or metadata"),
}


@dataclass(frozen=True)
class Item:
    """One labelled example: the audio file, optional video file, its class and speaker.

    `fold` is the predefined fold (ESC-50's 1..5) for cross-validation; None when the
    dataset has no folds.
    """

    audio: Path
    label: int
    speaker: str
    split: str
    video: Path | None = None
    fold: int | None = None


class Task:
    # How messages name the dataset ("ESC-50"); defaults to the registry name.
    title: ClassVar[str] = ""
    classes: ClassVar[tuple[str, ...]]
    modalities: ClassVar[tuple[str, ...]] = ("audio",)
    # One line that tells a user what directory tree the loader expects.
    layout: ClassVar[str]
    # Predefined folds (ESC-50: 5): `data.fold = k` makes fold k the test split. None: one split.
    fold_count: ClassVar[int | None] = None
    # Which of OPTIONAL_DATA_FIELDS this task reads; a non-default value of another is an error.
    data_options: ClassVar[frozenset[str]] = frozenset()
    # Layout detection (`avbench data inspect` without --task): a fallback task matches only
    # when no specific one does (any folder of class folders looks like an audiofolder).
    detect_as_fallback: ClassVar[bool] = False
    # The data section every derived `<model>-<task>` experiment starts from (avbench.derived):
    # where the dataset usually lives and the clip length that fits its recordings.
    data_defaults: ClassVar[dict[str, Any]] = {}

    skipped: list[tuple[Path, str]]

    @property
    def name(self) -> str:
        """The name the task is registered under (set by @register_task)."""
        return getattr(self, "registry_name", type(self).__name__.lower())

    @property
    def display_name(self) -> str:
        return self.title or self.name

    def items(self, root: Path, data: DataConfig) -> list[Item]:
        """Every usable example under `root`, with its split. Raises DatasetError when the
        layout is missing or empty."""
        raise NotImplementedError

    def synthesize(self, out: Path, *, size: str = "small", seed: int = 0) -> int:
        """Write a stand-in in the published layout with a learnable class signal.
        Returns the number of clips written."""
        raise NotImplementedError

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """Whether `root` has this task's layout signature. Cheap: reads names, never audio."""
        return False

    def check_data_options(self, data: DataConfig) -> None:
        """Refuse options this task would silently ignore (e.g. `data.fold` for CREMA-D)."""
        for field, (unused, why) in OPTIONAL_DATA_FIELDS.items():
            value = getattr(data, field)
            if field not in self.data_options and value != unused:
                raise DatasetError(f"{self.display_name}: data.{field}={value!r} does not apply ({why})")
        if self.fold_count is not None and data.fold > self.fold_count:
            raise DatasetError(
                f"{self.display_name}: data.fold={data.fold} but the dataset has folds 1–{self.fold_count}"
            )

    def missing(self, what: str) -> DatasetError:
        """The one-line error for an absent or empty layout."""
        return DatasetError(
            f"{self.display_name}: {what}; expected {self.layout}; use --synthetic for the synthetic stand-in"
        )
