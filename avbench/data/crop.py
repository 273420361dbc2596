"""A temporal window cut at load time from a longer cached clip (`data.train_crop: random`).

The Perceiver seed trained on a random window of every clip (16 of 64 consecutive frames, a
random 0.64 s of audio). Caching every possible window would multiply the cache; instead the
cache keeps one centred clip of `crop_from_seconds` per file, and each read cuts the model's
`clip_seconds` window out of it: at a random position on the train split, at the centre on
val and test. Positions lie on the video's frame grid (clip_seconds / num_frames apart), so
audio and video of one example always cover the same moments.

`TemporalWindow` knows nothing about splits or datasets: it maps a position to a slice of
each modality's time axis, so an augmentation stage can draw positions its own way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avbench.config import DataConfig
from avbench.errors import ConfigError

RANDOM = "random"


def crops_at_load(data: DataConfig) -> bool:
    return data.train_crop == RANDOM


def cached_clip(data: DataConfig) -> DataConfig:
    """The data settings the cache is filled with: the longer clip, with as many frames at the
    same frame rate. Unchanged when the window is not cut at load time."""
    if not crops_at_load(data):
        return data
    if data.max_segment:
        raise ConfigError("data.train_crop: random cuts one window per clip; it cannot be used with data.max_segment")
    if data.audio_feature == "spectrogram":
        raise ConfigError("data.train_crop: random does not apply to auDeep spectrograms (data.audio_feature)")
    frames = cached_frames(data)
    seconds = frames * data.clip_seconds / data.num_frames
    return data.model_copy(update={"clip_seconds": seconds, "num_frames": frames})


def cached_frames(data: DataConfig) -> int:
    """Frames of the cached clip: crop_from_seconds (default twice the clip) at the window's rate."""
    source = data.crop_from_seconds if data.crop_from_seconds is not None else 2 * data.clip_seconds
    if source < data.clip_seconds:
        raise ConfigError(
            f"data.crop_from_seconds ({source}) is shorter than data.clip_seconds ({data.clip_seconds}); "
            "the window is cut from it"
        )
    return max(int(round(data.num_frames * source / data.clip_seconds)), data.num_frames)


@dataclass(frozen=True)
class TemporalWindow:
    """`positions` possible windows; per modality its time axis, window length and cached length."""

    positions: int
    spans: dict[str, tuple[int, int, int]]

    @classmethod
    def between(cls, data: DataConfig, window: dict[str, tuple], cached: dict[str, tuple]) -> TemporalWindow:
        """From one example's shape per modality in the window and in the cached clip (time is
        the first axis of video [T, 3, H, W] and the last of audio [1, samples] / [1, mels, frames])."""
        spans = {}
        for modality, shape in window.items():
            axis = 0 if modality == "video" else len(shape) - 1
            spans[modality] = (axis, shape[axis], cached[modality][axis])
        return cls(cached_frames(data) - data.num_frames + 1, spans)

    @property
    def centre(self) -> float:
        return (self.positions - 1) / 2

    def start(self, modality: str, position: float) -> int:
        """First index of the window at `position` along the modality's time axis."""
        _, length, total = self.spans[modality]
        if self.positions == 1:
            return (total - length) // 2
        return min(int(round(position * (total - length) / (self.positions - 1))), total - length)

    def cut(self, modality: str, array: np.ndarray, position: float) -> np.ndarray:
        axis, length, _ = self.spans[modality]
        start = self.start(modality, position)
        return array[(slice(None),) * axis + (slice(start, start + length),)]
