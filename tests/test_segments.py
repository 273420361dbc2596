"""Segments (OpenAV's max_segment): where they lie, and that audio and video cut the same moments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avbench.config import DataConfig
from avbench.data.cache import FeatureCache
from avbench.data.dataset import ArrayDataset, prepare_data
from avbench.data.segments import clip_windows, sample_windows
from avbench.errors import ConfigError
from tests.media import ListedTask, gray, write_video

SECONDS, RATE, MELS = 2.0, 16000, 40


def test_windows_start_at_0_end_at_the_clip_end_and_are_equally_spaced():
    assert clip_windows(2.0, 0, 1.0) == [(0.0, 2.0)]
    assert clip_windows(2.0, 1, 1.0) == [(0.5, 1.5)]
    assert clip_windows(2.0, 3, 1.0) == [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0)]
    starts = [start for start, _ in clip_windows(3.05, 5, 1.16)]
    assert starts[0] == 0 and starts[-1] == pytest.approx(3.05 - 1.16) and np.allclose(np.diff(np.diff(starts)), 0)
    assert all(end - start == 1000 for start, end in sample_windows(32000, 7, 1000))
    assert sample_windows(32000, 7, 1000)[-1][1] == 32000
    with pytest.raises(ConfigError, match="segment_seconds"):
        clip_windows(1.0, 2, 1.5)


def chirp(seconds: float, rate: int) -> np.ndarray:
    """A tone rising 200 Hz → 3200 Hz: its pitch tells the time."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * (200 * t + 750 * t**2))).astype(np.float32)


def _band_hz(band: int) -> float:
    """Centre of a torchaudio (HTK) mel band for MELS bands up to RATE / 2."""
    top = 2595 * np.log10(1 + (RATE / 2) / 700)
    return 700 * (10 ** (top * (band + 1) / (MELS + 1) / 2595) - 1)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """One MP4 whose audio pitch and video brightness both rise with time."""
    path = tmp_path_factory.mktemp("seg") / "clip.mp4"
    return write_video(
        path, lambda t: gray(20 + 100 * t), np.arange(int(SECONDS * 25)) / 25, audio=(chirp(SECONDS, RATE), RATE)
    )


def test_segments_cut_audio_and_video_at_the_same_moments(clip, tmp_path):
    data = DataConfig(
        modalities=["audio", "video"],
        clip_seconds=SECONDS,
        n_mels=MELS,
        num_frames=4,
        image_size=8,
        max_segment=3,
        segment_seconds=1.0,
    )
    task = ListedTask([(clip, clip, 0, split) for split in ("train", "val", "test")])
    prepared = prepare_data(task, tmp_path, data, FeatureCache(tmp_path / "cache"))
    assert prepared.spec.modalities == ("audio", "video")
    assert prepared.spec.shapes == {"audio": (3, 1, MELS, 101), "video": (3, 4, 3, 8, 8)}
    example = ArrayDataset(prepared.splits["train"])[0]
    centres = np.array([0.5, 1.0, 1.5])  # of the windows [0, 1], [0.5, 1.5], [1, 2]
    # Video: the frames of segment k were shown around its centre.
    shown = (example["video"].float().mean(dim=(1, 2, 3, 4)).numpy() - 20) / 100
    assert np.abs(shown - centres).max() < 0.15
    # Audio: the pitch in the middle of segment k is the chirp's pitch at its centre.
    middle = example["audio"][:, 0, :, 50].numpy()  # [S, mels] at the segment's middle frame
    pitch = np.array([_band_hz(int(band)) for band in middle.argmax(axis=1)])
    heard = (pitch - 200) / 1500  # the chirp's pitch is 200 + 1500 t
    assert np.abs(heard - centres).max() < 0.2


def test_batches_gain_a_segment_axis(clip, tmp_path):
    data = DataConfig(
        modalities=["audio", "video"],
        clip_seconds=SECONDS,
        n_mels=16,
        num_frames=2,
        image_size=8,
        max_segment=4,
        segment_seconds=0.8,
    )
    task = ListedTask([(clip, clip, label, split) for split in ("train", "val", "test") for label in (0, 1)])
    prepared = prepare_data(task, tmp_path, data, FeatureCache(tmp_path / "cache"))
    batch = next(iter(torch.utils.data.DataLoader(ArrayDataset(prepared.splits["train"]), batch_size=2)))
    assert batch["audio"].shape == (2, 4, 1, 16, 81) and batch["audio"].dtype == torch.float32
    assert batch["video"].shape == (2, 4, 2, 3, 8, 8) and batch["video"].dtype == torch.uint8  # as cached
    assert batch["label"].tolist() == [0, 1]
    # One file used by both splits' items is decoded once per modality.
    assert prepared.cache["decoded"] == 2
