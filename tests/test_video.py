"""Video frames: sampled by timestamp (frame-rate independent), cropped, resized, normalised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avbench.data.video import FrameExtractor, FrameSettings, frame_scale_shift, normalize_frames, video_duration
from avbench.errors import DecodeError
from tests.media import gray, tone, write_audio_av, write_video

SECONDS = 2.0


def ramp(when: float) -> np.ndarray:
    """A frame whose brightness tells the time it was shown: 20 at 0 s, 220 at 2 s."""
    return gray(20 + 200 * when / SECONDS)


def shown_at(frames: np.ndarray) -> np.ndarray:
    """The time each sampled frame was shown, read back from its brightness."""
    return (frames.reshape(len(frames), -1).mean(axis=1) - 20) / 200 * SECONDS


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    return {
        "15fps.mp4": write_video(folder / "15.mp4", ramp, np.arange(int(SECONDS * 15)) / 15),
        "30fps.mp4": write_video(folder / "30.mp4", ramp, np.arange(int(SECONDS * 30)) / 30),
        "25fps.webm": write_video(
            folder / "25.webm", ramp, np.arange(int(SECONDS * 25)) / 25, container_format="webm", codec="libvpx"
        ),
        "15fps.flv": write_video(
            folder / "15.flv", ramp, np.arange(int(SECONDS * 15)) / 15, container_format="flv", codec="flv"
        ),
        # Variable frame rate: 8 fps for the first second, 30 fps after.
        "vfr.mp4": write_video(folder / "vfr.mp4", ramp, [*np.arange(0, 1, 1 / 8), *np.arange(1, SECONDS, 1 / 30)]),
    }


@pytest.mark.parametrize("name", ["15fps.mp4", "30fps.mp4", "25fps.webm", "15fps.flv", "vfr.mp4"])
def test_frames_are_picked_by_timestamp(videos, name):
    settings = FrameSettings(num_frames=8, image_size=16, clip_seconds=SECONDS)
    frames = FrameExtractor(settings)(videos[name])
    assert frames.shape == (8, 3, 16, 16) and frames.dtype == np.uint8
    assert abs(video_duration(videos[name]) - SECONDS) < 0.01
    wanted = settings.sample_times(SECONDS)[0]  # 0.125, 0.375, … the centres of 8 equal spans
    got = shown_at(frames)
    # Each sample is the frame on screen at its instant: shown at most one frame period before.
    period = 1 / 8 if name == "vfr.mp4" else 1 / 15
    assert np.all(got <= wanted + 0.03) and np.all(got >= wanted - period - 0.03), (got, wanted)


def test_frame_rate_does_not_change_what_is_sampled(videos):
    extract = FrameExtractor(FrameSettings(num_frames=12, image_size=16, clip_seconds=1.5))
    slow, fast = shown_at(extract(videos["15fps.mp4"])), shown_at(extract(videos["30fps.mp4"]))
    assert np.abs(slow - fast).max() <= 1 / 15 + 0.03


def test_short_video_repeats_its_edge_frames(tmp_path):
    short = write_video(tmp_path / "short.mp4", ramp, np.arange(10) / 10)  # 1 s, clip is 2 s
    frames = FrameExtractor(FrameSettings(num_frames=8, image_size=16, clip_seconds=SECONDS))(short)
    got = shown_at(frames)
    assert np.allclose(got[:2], 0.0, atol=0.03) and np.allclose(got[-2:], 0.9, atol=0.03)
    assert np.all(np.diff(got) >= -0.01)


def quadrants(when: float, size=(80, 60)) -> np.ndarray:
    """Red, green, blue, white quadrants on a 80×60 (non-square) frame."""
    width, height = size
    image = np.zeros((height, width, 3), np.uint8)
    image[: height // 2, : width // 2] = (255, 0, 0)
    image[: height // 2, width // 2 :] = (0, 255, 0)
    image[height // 2 :, : width // 2] = (0, 0, 255)
    image[height // 2 :, width // 2 :] = (255, 255, 255)
    return image


@pytest.mark.parametrize(
    ("box", "colour"),
    [
        ([0.0, 0.0, 0.45, 0.45], (255, 0, 0)),
        ([0.55, 0.0, 1.0, 0.45], (0, 255, 0)),
        ([0.05, 0.6, 0.45, 0.95], (0, 0, 255)),
        ([0.6, 0.6, 0.9, 0.9], (255, 255, 255)),
    ],
)
def test_crop_box_selects_a_region(tmp_path, box, colour):
    video = write_video(tmp_path / "q.mp4", quadrants, np.arange(10) / 10, size=(80, 60))
    frames = FrameExtractor(FrameSettings(num_frames=2, image_size=8, crop_box=tuple(box), clip_seconds=1.0))(video)
    mean = frames.transpose(0, 2, 3, 1).reshape(-1, 3).mean(axis=0)
    assert np.abs(mean - colour).max() < 30


def test_centre_crop_is_the_middle_square(tmp_path):
    video = write_video(tmp_path / "q.mp4", quadrants, np.arange(10) / 10, size=(80, 60))
    frames = FrameExtractor(FrameSettings(num_frames=1, image_size=30, clip_seconds=1.0))(video)
    image = frames[0].transpose(1, 2, 0).astype(int)
    # 80×60 → the 60×60 centre square keeps all four quadrants, split in the middle.
    assert np.abs(image[3, 3] - (255, 0, 0)).max() < 40 and np.abs(image[3, -4] - (0, 255, 0)).max() < 40
    assert np.abs(image[-4, 3] - (0, 0, 255)).max() < 40 and np.abs(image[-4, -4] - (255, 255, 255)).max() < 40


def test_normalisation_uses_mean_and_std_per_channel():
    frames = np.full((2, 3, 4, 4), 255, np.uint8)
    frames[:, 1] = 0
    scale, shift = (torch.from_numpy(a) for a in frame_scale_shift([0.5, 0.5, 0.0], [0.5, 0.25, 1.0]))
    out = normalize_frames(torch.from_numpy(frames), scale, shift).numpy()
    assert out.dtype == np.float32
    assert np.allclose(out[:, 0], 1.0) and np.allclose(out[:, 1], -2.0) and np.allclose(out[:, 2], 1.0)


def test_files_without_frames_are_decode_errors(tmp_path):
    audio_only = write_audio_av(tmp_path / "a.m4a", tone(1, 16000), 16000, container_format="ipod", codec="aac")
    extract = FrameExtractor(FrameSettings(num_frames=2, image_size=8))
    with pytest.raises(DecodeError, match="no video track"):
        extract(audio_only)
    garbage = tmp_path / "b.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    with pytest.raises(DecodeError, match="not decodable"):
        extract(garbage)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("[0.5, 0, 0.2, 1]", "x0 < x1"),
        ("[0, 0, 1]", "four fractions"),
        ("[0, 0, 1, 1.5]", "y1 <= 1"),
        ("middle", "crop_box"),
    ],
)
def test_a_bad_crop_box_is_a_config_error(value, problem, workspace):
    from avbench.catalog import load_experiment
    from avbench.errors import ConfigError

    with pytest.raises(ConfigError, match="data.crop_box") as caught:
        load_experiment("spectrogram-cnn-cremad", overrides=[f"data.crop_box={value}"])
    assert problem in str(caught.value) and "\n" not in str(caught.value)


def test_a_truncated_video_keeps_what_decodes(videos, tmp_path):
    content = videos["15fps.flv"].read_bytes()
    half = tmp_path / "half.flv"
    half.write_bytes(content[: len(content) // 2])
    assert 0.5 < video_duration(half) < 1.6  # measured from its packets, not its header's 2 s
    assert FrameExtractor(FrameSettings(num_frames=4, image_size=8, clip_seconds=1.0))(half).shape == (4, 3, 8, 8)
    stub = tmp_path / "stub.flv"
    stub.write_bytes(content[:40])
    with pytest.raises(DecodeError):
        video_duration(stub)
