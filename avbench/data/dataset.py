"""From a task's file list to tensors per split: features come from the shared cache.

Bad input never crashes a run and never silently shrinks it: a file that cannot be used
(corrupt, empty, no audio track, a video file missing, a name the task cannot label) is
dropped from its split with its reason in `PreparedData.skipped`, which the run record
keeps; with `data.strict` the first one stops the run with one line naming it. Split leaks
(avbench.data.leaks) are warned about and recorded, and stop a strict run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar

import numpy as np

from avbench.config import DataConfig
from avbench.data.cache import CachedRows, FeatureCache
from avbench.data.cache_build import Extractor
from avbench.data.crop import TemporalWindow, cached_clip, crops_at_load
from avbench.data.features import LogMelExtractor, LogMelSettings, WaveformExtractor, WaveformSettings
from avbench.data.leaks import LeakReport, check_leaks
from avbench.data.linear_spectrogram import LinearSpectrogramExtractor, LinearSpectrogramSettings
from avbench.data.segments import clip_windows
from avbench.data.spectrogram import SpectrogramExtractor, SpectrogramSettings
from avbench.data.video import FrameExtractor, FrameSettings
from avbench.errors import ConfigError, DatasetError, DecodeError
from avbench.spec import SPLITS, Item, Task, TaskSpec
from avbench.threads import usable_cores


@dataclass
class SplitArrays:
    features: dict[str, CachedRows]  # modality → one row per example, memory-mapped
    labels: np.ndarray  # [N] int64
    speakers: list[str]
    shapes: dict[str, tuple[int, ...]]  # modality → one example's tensor shape (with its channel axis)
    # mean, std the uint8 frames are normalised with, on the device (avbench.data.device_inputs)
    video_norm: tuple[list[float], list[float]] = ([0.0] * 3, [1.0] * 3)
    # Where each example came from: its audio file and predefined fold (None without folds),
    # for pipelines that regroup examples by fold or export them by name (avbench.audeep).
    paths: list[Path] = field(default_factory=list)
    folds: list[int | None] = field(default_factory=list)
    # data.train_crop random: `shapes` are the cached clip's; each read cuts this window from it,
    # at a random position when `random_window` (the train split), else at the centre.
    window: TemporalWindow | None = None
    random_window: bool = False

    @property
    def audio(self) -> CachedRows:
        return self.features["audio"]


@dataclass
class PreparedData:
    spec: TaskSpec
    splits: dict[str, SplitArrays]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cache: dict = field(default_factory=dict)  # hits, misses, decoded, failed, hit_rate, by_modality
    leaks: LeakReport = field(default_factory=LeakReport)

    def sizes(self) -> dict[str, int]:
        return {name: len(split.labels) for name, split in self.splits.items()}


Settings = TypeVar("Settings", LogMelSettings, WaveformSettings, FrameSettings)


def _settings_from(settings_class: type[Settings], data: DataConfig, **given) -> Settings:
    """A feature's settings from the data section: every field under its DataConfig name,
    `segments` from data.max_segment, and `given` over both."""
    values = {f.name: getattr(data, f.name) for f in fields(settings_class) if f.name in DataConfig.model_fields}
    return settings_class(**{**values, "segments": data.max_segment, **given})


def logmel_settings(data: DataConfig) -> LogMelSettings:
    return _settings_from(LogMelSettings, data)


def waveform_settings(data: DataConfig) -> WaveformSettings:
    return _settings_from(WaveformSettings, data)


def frame_settings(data: DataConfig) -> FrameSettings:
    crop_box = None if isinstance(data.crop_box, str) else tuple(data.crop_box)
    return _settings_from(FrameSettings, data, crop_box=crop_box)


AudioExtractor = LogMelExtractor | WaveformExtractor | SpectrogramExtractor | LinearSpectrogramExtractor


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
    elif data.audio_feature == "linear_spectrogram":
        if data.max_segment:
            raise ConfigError("the linear spectrogram covers the whole file: data.max_segment must be 0")
        audio = LinearSpectrogramExtractor(LinearSpectrogramSettings(data.sample_rate, data.spectrogram_size))
    elif data.audio_feature == "waveform":
        audio = WaveformExtractor(waveform_settings(data))
    else:
        audio = LogMelExtractor(logmel_settings(data))
    extractors = {"audio": audio, "video": FrameExtractor(frame_settings(data))}
    return {name: extractors[name] for name in data.modalities}


def example_shapes(data: DataConfig) -> dict[str, tuple[int, ...]]:
    """modality → one example's tensor shape under these data settings, without reading data
    (what a model's TaskSpec will say; tests and cost estimates build specs from it). With a
    window cut at load time, the window's shape, not the cached clip's."""
    return {m: tuple(extractor.settings.shape) for m, extractor in feature_extractors(data).items()}


def load_window(data: DataConfig) -> TemporalWindow | None:
    """The window cut from each cached clip at load time (data.train_crop random), else None."""
    if not crops_at_load(data):
        return None
    return TemporalWindow.between(data, example_shapes(data), example_shapes(cached_clip(data)))


def cache_workers(data: DataConfig) -> int:
    if data.cache_workers == "auto":
        return usable_cores()
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
    extractors = feature_extractors(cached_clip(data), audio)
    window = load_window(data)
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
    leaks = check_leaks(usable, root, strict=data.strict)

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
        labels = _labels(members, multi_head=bool(task.heads))
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
            window=window,
            random_window=window is not None and name == "train",
        )
    spec = TaskSpec(
        num_classes=len(task.classes),
        modalities=modalities,
        sample_rate=data.sample_rate,
        shapes=example_shapes(data) if window is not None else shapes,
        class_names=tuple(task.classes),
        heads=dict(task.heads),
    )
    return PreparedData(spec, splits, skipped, cache.totals(), leaks)


def _labels(members: list[Item], *, multi_head: bool) -> np.ndarray:
    """[N] class numbers, or [N, heads] for a task with several heads."""
    if multi_head:
        return np.array([item.targets for item in members], dtype=np.int64).reshape(len(members), -1)
    return np.array([item.label for item in members], dtype=np.int64)


class ArrayDataset:
    """A torch-style map dataset over a split: {"audio": float32 [1, mels, frames] or [1, samples],
    "video": uint8 [T, 3, H, W] as cached, "label": int (a [heads] tensor for several heads)},
    with a leading segment axis S on both when segments are on. The frames become the model's
    normalised floats on the training device: DeviceInputs (avbench.data.device_inputs)."""

    def __init__(self, split: SplitArrays):
        self.split = split

    def __len__(self) -> int:
        return len(self.split.labels)

    def __getitem__(self, index: int) -> dict:
        import torch

        label = self.split.labels[index]
        # One column per head for a multi-head task: batches get labels [B, heads].
        example: dict = {"label": torch.from_numpy(label.copy()) if label.ndim else int(label)}
        window = self.split.window
        position = 0.0
        if window is not None:
            # torch's generator: seeded by train.seed in the main process, per worker by the loader.
            position = int(torch.randint(window.positions, ())) if self.split.random_window else window.centre
        for modality, rows in self.split.features.items():
            row = rows[index]
            if modality == "audio":
                # The cache stores rows without the channel axis; the shape puts it back.
                row = np.asarray(row, dtype=np.float32).reshape(self.split.shapes[modality])
            if window is not None:
                row = window.cut(modality, row, position)
            # A copy for the frames: the cache's rows are read-only memory maps.
            array = np.ascontiguousarray(row) if modality == "audio" else np.array(row, order="C")
            example[modality] = torch.from_numpy(array)
        return example
