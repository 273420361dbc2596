"""The contracts models, tasks and data share (no torch): what a model may know about a task
(TaskSpec), one labelled example (Item), the Task interface every dataset implements, the
split names and the metrics every run reports.

A task knows a dataset's published layout. It never decodes audio for training (that is
`avbench.data`) and never imports torch, so `avbench data synth` and `inspect` stay light.
Models receive a TaskSpec, never a task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from avbench.errors import DatasetError

if TYPE_CHECKING:
    from avbench.config import DataConfig

# What fit() reports for every split (per head when a task has several), and what `train.metric` selects on.
METRICS = ("acc", "uar", "macro_f1")
# The sizes of every task's synthetic stand-in (`avbench data synth --size`, `data.synth_size`).
STANDIN_SIZES = ("tiny", "small", "medium", "full")


@dataclass(frozen=True)
class TaskSpec:
    """Everything a model may know about a task."""

    num_classes: int
    modalities: tuple[str, ...] = ("audio",)
    sample_rate: int = 16000
    # Shape of each modality's tensor for one example, without the batch axis,
    # e.g. {"audio": (1, 64, 201)} for a one-channel log-mel image.
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    class_names: tuple[str, ...] = ()
    # Several targets per example (emotion and state): head name → its class names, in the
    # order of the label columns. Empty: one head of `num_classes` (its logits a tensor);
    # otherwise the model returns a dict of logits per head and num_classes is the first's.
    heads: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def head_sizes(self) -> dict[str, int]:
        """head name → number of classes; empty for a single-head task."""
        return {name: len(classes) for name, classes in self.heads.items()}


def split_metric(name: str) -> tuple[str | None, str]:
    """'emotion/acc' → ('emotion', 'acc'); 'acc' → (None, 'acc'): which head a metric is of."""
    head, sep, base = name.rpartition("/")
    return (head, base) if sep else (None, name)


SPLITS = ("train", "val", "test")
UNKNOWN_SPEAKER = "unknown"  # Item.speaker when the layout does not say who speaks
# The DataConfig fields only some tasks honour: the value that means "not used", and why a
# task that does not honour one refuses another value.
OPTIONAL_DATA_FIELDS = {
    "fold": (1, "it has no predefined folds"),
    "folds": (0, "its split is not by speaker"),
    "speaker_regex": (None, "its speakers come from its layout"),
    "label_source": ("filename", "its labels come only from its file names or metadata"),
    "subfolders": ({}, "its splits are not folders of their own"),
    "classes": ([], "its classes are fixed by the dataset"),
    "split_csv": (None, "its split comes from its layout"),
    "audio_root": (None, "its audio lies in its own layout"),
}


@dataclass(frozen=True)
class Item:
    """One labelled example: the audio file, optional video file, its class(es) and speaker.

    `fold` is the predefined fold (ESC-50's 1..5) for cross-validation; None when the
    dataset has no folds.
    """

    audio: Path
    label: int
    speaker: str
    split: str
    video: Path | None = None
    fold: int | None = None
    # A task with several heads: the label of every head, in the order of Task.heads
    # (`label` is the first's).
    targets: tuple[int, ...] = ()


class Task:
    # How messages name the dataset ("ESC-50"); defaults to the registry name.
    title: ClassVar[str] = ""
    classes: ClassVar[tuple[str, ...]]
    # Several targets per example: head name → its classes (the first head's are `classes`).
    # Empty: one head. A task whose heads come from its data sets them in items().
    heads: dict[str, tuple[str, ...]] = {}
    modalities: ClassVar[tuple[str, ...]] = ("audio",)
    # One line that tells a user what directory tree the loader expects.
    layout: ClassVar[str]
    # Predefined folds (ESC-50: 5): `data.fold = k` makes fold k the test split. None: one split.
    fold_count: ClassVar[int | None] = None
    # Which of OPTIONAL_DATA_FIELDS this task reads; a non-default value of another is an error.
    data_options: ClassVar[frozenset[str]] = frozenset()
    # The synthetic stand-in's settings for each of STANDIN_SIZES (what they mean is the task's).
    sizes: ClassVar[dict[str, object]]
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
        for option, (unused, why) in OPTIONAL_DATA_FIELDS.items():
            value = getattr(data, option)
            if option not in self.data_options and value != unused:
                raise DatasetError(f"{self.display_name}: data.{option}={value!r} does not apply ({why})")
        if self.fold_count is not None and data.fold > self.fold_count:
            raise DatasetError(
                f"{self.display_name}: data.fold={data.fold} but the dataset has folds 1–{self.fold_count}"
            )
        if "folds" in self.data_options:
            self._check_speaker_folds(data)

    def _check_speaker_folds(self, data: DataConfig) -> None:
        if data.folds and data.folds < len(SPLITS):
            raise DatasetError(f"{self.display_name}: data.folds={data.folds}: a test, a val and a train fold need 3")
        if data.fold > max(data.folds, 1):
            where = f"folds 1–{data.folds}" if data.folds else "no folds (set data.folds, e.g. 5)"
            raise DatasetError(f"{self.display_name}: data.fold={data.fold} but the speaker split has {where}")

    def folds_for(self, data: DataConfig) -> int | None:
        """How many folds cross-validation runs over: the predefined ones, or `data.folds` speaker folds."""
        return self.fold_count or (data.folds if "folds" in self.data_options and data.folds else None)

    def missing(self, what: str) -> DatasetError:
        """The one-line error for an absent or empty layout."""
        return DatasetError(
            f"{self.display_name}: {what}; expected {self.layout}; use --synthetic for the synthetic stand-in"
        )
