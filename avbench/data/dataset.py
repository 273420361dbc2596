"""From a task's file list to tensors per split: features come from the shared cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avbench.config import DataConfig
from avbench.data.cache import FeatureCache
from avbench.data.features import LogMelExtractor, LogMelSettings
from avbench.errors import DatasetError
from avbench.spec import TaskSpec
from avbench.tasks.base import SPLITS, Item, Task


@dataclass
class SplitArrays:
    audio: np.ndarray  # [N, n_mels, frames], usually a read-only memmap
    labels: np.ndarray  # [N] int64
    speakers: list[str]


@dataclass
class PreparedData:
    spec: TaskSpec
    splits: dict[str, SplitArrays]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cache_hits: int = 0
    cache_misses: int = 0

    def sizes(self) -> dict[str, int]:
        return {name: len(split.labels) for name, split in self.splits.items()}


def logmel_settings(data: DataConfig) -> LogMelSettings:
    return LogMelSettings(
        sample_rate=data.sample_rate,
        clip_seconds=data.clip_seconds,
        n_mels=data.n_mels,
        win_ms=data.win_ms,
        hop_ms=data.hop_ms,
    )


def prepare_data(
    task: Task,
    root: Path,
    data: DataConfig,
    cache: FeatureCache,
    progress: Callable[[int, int], None] | None = None,
) -> PreparedData:
    """List, split and featurise a dataset; the features of every split come from one cache
    entry so a sweep's trials (and other experiments with the same settings) share it."""
    items = task.items(root, data)
    by_split: dict[str, list[Item]] = {name: [] for name in SPLITS}
    for item in items:
        by_split[item.split].append(item)
    for name, members in by_split.items():
        if not members:
            raise DatasetError(f"{task.name}: split '{name}' is empty under {root}")
    ordered = [item for name in SPLITS for item in by_split[name]]
    settings = logmel_settings(data)
    extractor = _LazyExtractor(settings)
    features = cache.get_or_build(
        [item.audio for item in ordered], settings.key_fields(), extractor, progress
    )
    splits: dict[str, SplitArrays] = {}
    start = 0
    for name in SPLITS:
        members = by_split[name]
        labels = np.array([item.label for item in members], dtype=np.int64)
        if name == "train" and data.shuffle_train_labels:
            labels = np.random.default_rng(data.split_seed).permutation(labels)
        splits[name] = SplitArrays(
            audio=features[start : start + len(members)],
            labels=labels,
            speakers=[item.speaker for item in members],
        )
        start += len(members)
    spec = TaskSpec(
        num_classes=len(task.classes),
        modalities=("audio",),
        sample_rate=data.sample_rate,
        shapes={"audio": settings.shape},
        class_names=tuple(task.classes),
    )
    skipped = [(str(path), reason) for path, reason in getattr(task, "skipped", [])]
    return PreparedData(spec, splits, skipped, cache.hits, cache.misses)


class _LazyExtractor:
    """Builds the torchaudio transforms only on a cache miss, so a hit stays cheap."""

    def __init__(self, settings: LogMelSettings):
        self.settings = settings
        self._extract: LogMelExtractor | None = None

    def __call__(self, path: Path) -> np.ndarray:
        if self._extract is None:
            self._extract = LogMelExtractor(self.settings)
        return self._extract(path)


class ArrayDataset:
    """A torch-style map dataset over a split: {"audio": [1, mels, frames], "label": int}."""

    def __init__(self, split: SplitArrays):
        self.split = split

    def __len__(self) -> int:
        return len(self.split.labels)

    def __getitem__(self, index: int) -> dict:
        import torch

        audio = torch.from_numpy(np.asarray(self.split.audio[index], dtype=np.float32))
        return {"audio": audio.unsqueeze(0), "label": int(self.split.labels[index])}
