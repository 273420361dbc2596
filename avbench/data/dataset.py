"""From a task's file list to tensors per split: features come from the shared cache.

Bad input never crashes a run and never silently shrinks it: a file that cannot be used
(corrupt, empty, no audio track, a video file missing, a name the task cannot label) is
dropped from its split with its reason in `PreparedData.skipped`, which the run record
keeps; with `data.strict` the first one stops the run with one line naming it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avbench.config import DataConfig
from avbench.data.cache import CachedRows, FeatureCache
from avbench.data.cache_build import Extractor
from avbench.data.features import LogMelExtractor, LogMelSettings, WaveformExtractor, WaveformSettings
from avbench.data.segments import clip_windows
from avbench.data.spectrogram import SpectrogramExtractor, SpectrogramSettings
from avbench.data.video import FrameExtractor, FrameSettings, normalize_frames
from avbench.errors import ConfigError, DatasetError, DecodeError
from avbench.spec import TaskSpec
from avbench.tasks.base import SPLITS, Item, Task


@dataclass
class SplitArrays:
    features: dict[str, CachedRows]  # modality → one row per example, memory-mapped
    labels: np.ndarray  # [N] int64
    speakers: list[str]
    shapes: dict[str, tuple[int, ...]]  # modality → one example's tensor shape (with its channel axis)
    video_norm: tuple[list[float], list[float]] = ([0.0] * 3, [1.0] * 3)  # mean, std applied on read
    # Where each example came from: its audio file and predefined fold (None without folds),
    # for pipelines that regroup examples by fold or export them by name (avbench.audeep).
    paths: list[Path] = field(default_factory=list)
    folds: list[int | None] = field(default_factory=list)

    @property
    def audio(self) -> CachedRows:
        return self.features["audio"]


@dataclass
class PreparedData:
    spec: TaskSpec
    splits: dict[str, SplitArrays]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cache: dict = field(default_factory=dict)  # hits, misses, decoded, failed, hit_rate, by_modality

    def sizes(self) -> dict[str, int]:
        return {name: len(split.labels) for name, split in self.splits.items()}


def logmel_settings(data: DataConfig) -> LogMelSettings:
    return LogMelSettings(
        sample_rate=data.sample_rate,
        clip_seconds=data.clip_seconds,
        n_mels=data.n_mels,
        win_ms=data.win_ms,
        hop_ms=data.hop_ms,
        segments=data.max_segment,
        segment_seconds=data.segment_seconds,
    )


def waveform_settings(data: DataConfig) -> WaveformSettings:
    return WaveformSettings(
        sample_rate=data.sample_rate,
        clip_seconds=data.clip_seconds,
        segments=data.max_segment,
        segment_seconds=data.segment_seconds,
    )


def frame_settings(data: DataConfig) -> FrameSettings:
    return FrameSettings(
        num_frames=data.num_frames,
        image_size=data.image_size,
        crop_box=None if isinstance(data.crop_box, str) else tuple(data.crop_box),
        clip_seconds=data.clip_seconds,
        segments=data.max_segment,
        segment_seconds=data.segment_seconds,
    )


AudioExtractor = LogMelExtractor | WaveformExtractor | SpectrogramExtractor


def feature_extractors(data: DataConfig, audio: Extractor | None = None) -> dict[str, AudioExtractor | FrameExtractor]:
    """modality → the extractor that turns one of its files into cached features. An "auto"
    audio feature that nobody resolved (data inspection, cache tools) means log-mel. `audio`
    is the model's own extractor for the inputs only it can make ("hf", "embedding")."""
    clip_windows(data.clip_seconds, data.max_segment, data.segment_seconds)  # fails early on bad segments
    if audio is not None:
        if data.max_segment:
            raise ConfigError(f"{data.audio_feature} inputs cover the whole clip: data.max_segment must be 0")
    elif data.audio_feature in ("hf", "embedding"):
        raise ConfigError(f"data.audio_feature {data.audio_feature} is made by the model that reads it; remove it")
    elif data.audio_feature == "spectrogram":
        if data.max_segment:
            raise ConfigError("auDeep spectrograms cover the whole clip: data.max_segment must be 0")
        audio = SpectrogramExtractor(SpectrogramSettings.from_data(data))
    elif data.audio_feature == "waveform":
        audio = WaveformExtractor(waveform_settings(data))
    else:
        audio = LogMelExtractor(logmel_settings(data))
    extractors = {"audio": audio, "video": FrameExtractor(frame_settings(data))}
    return {name: extractors[name] for name in data.modalities}


def example_shapes(data: DataConfig) -> dict[str, tuple[int, ...]]:
    """modality → one example's tensor shape under these data settings, without reading data
    (what a model's TaskSpec will say; tests and cost estimates build specs from it)."""
    return {m: tuple(extractor.settings.shape) for m, extractor in feature_extractors(data).items()}


def cache_workers(data: DataConfig) -> int:
    if data.cache_workers == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return int(data.cache_workers)


def _source(item: Item, modality: str) -> Path | None:
    return item.audio if modality == "audio" else item.video


def prepare_data(
    task: Task,
    root: Path,
    data: DataConfig,
    cache: FeatureCache,
    progress: Callable[[int, int], None] | None = None,
    audio: Extractor | None = None,
) -> PreparedData:
    """List, split and featurise a dataset. Features come per file from the shared cache, so a
    sweep's trials, and other experiments with the same feature settings, decode nothing twice.
    `audio`: the model's own audio extractor (registered `input_extractor`), if it has one."""
    modalities = tuple(dict.fromkeys(data.modalities))
    absent = [m for m in modalities if m not in task.modalities]
    if absent:
        raise ConfigError(
            f"task '{task.name}' has no {absent[0]} (data.modalities may use: {', '.join(task.modalities)})"
        )
    extractors = feature_extractors(data, audio)
    try:
        items = task.items(root, data)
    except PermissionError as exc:  # an unreadable folder of the layout: nothing below it can be listed
        raise DatasetError(f"cannot read {exc.filename}: {exc.strerror}") from None
    skipped = [(str(path), reason) for path, reason in getattr(task, "skipped", [])]
    usable: list[Item] = []
    for item in items:
        missing = [m for m in modalities if _source(item, m) is None]
        if missing:
            skipped.append((str(item.audio), f"no {missing[0]} file"))
        else:
            usable.append(item)
    if data.strict and skipped:
        raise DecodeError(*skipped[0])

    requests = {m: (extractors[m], [_source(item, m) for item in usable]) for m in modalities}
    fetched = cache.fetch(requests, strict=data.strict, progress=progress)
    bad: dict[Path, str] = {}
    for modality in modalities:
        for path, reason in fetched[modality].failures.items():
            bad.setdefault(path, reason)
    kept = [item for item in usable if not any(_source(item, m) in bad for m in modalities)]
    skipped += [(str(path), reason) for path, reason in bad.items()]

    shapes = {m: tuple(extractors[m].settings.shape) for m in modalities}
    position = {m: {path: i for i, path in enumerate(fetched[m].paths)} for m in modalities}
    splits: dict[str, SplitArrays] = {}
    for name in SPLITS:
        members = [item for item in kept if item.split == name]
        if not members:
            hint = f" after skipping {len(skipped)} bad file(s), first {': '.join(skipped[0])}" if skipped else ""
            raise DatasetError(f"{task.name}: split '{name}' is empty under {root}{hint}")
        labels = np.array([item.label for item in members], dtype=np.int64)
        if name == "train" and data.shuffle_train_labels:
            labels = np.random.default_rng(data.split_seed).permutation(labels)
        features = {m: fetched[m].rows.take([position[m][_source(item, m)] for item in members]) for m in modalities}
        splits[name] = SplitArrays(
            features,
            labels,
            [item.speaker for item in members],
            shapes,
            (list(data.video_mean), list(data.video_std)),
            paths=[item.audio for item in members],
            folds=[item.fold for item in members],
        )
    spec = TaskSpec(
        num_classes=len(task.classes),
        modalities=modalities,
        sample_rate=data.sample_rate,
        shapes=shapes,
        class_names=tuple(task.classes),
    )
    return PreparedData(spec, splits, skipped, cache.totals())


class ArrayDataset:
    """A torch-style map dataset over a split: {"audio": [1, mels, frames] or [1, samples],
    "video": [T, 3, H, W], "label": int}, with a leading segment axis S on both when segments
    are on."""

    def __init__(self, split: SplitArrays):
        self.split = split

    def __len__(self) -> int:
        return len(self.split.labels)

    def __getitem__(self, index: int) -> dict:
        import torch

        example: dict = {"label": int(self.split.labels[index])}
        for modality, rows in self.split.features.items():
            row = rows[index]
            if modality == "audio":
                # The cache stores rows without the channel axis; the shape puts it back.
                array = np.asarray(row, dtype=np.float32).reshape(self.split.shapes[modality])
            else:
                array = normalize_frames(row, *self.split.video_norm)
            example[modality] = torch.from_numpy(array)
        return example
