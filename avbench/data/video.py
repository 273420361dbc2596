"""Video frames with PyAV: sampled by timestamp, cropped, resized, cached as uint8.

Frames are picked by *time*, not by index: `num_frames` instants spread evenly over the clip
(or over each segment), and each takes the frame on screen at that instant. A 15 fps and a
30 fps encoding of the same scene therefore give the same frames (to within one frame
period), which index-based sampling would not. The clip window is the same centre crop of
`clip_seconds` the audio gets, so both modalities see the same moments.

The cache keeps uint8 [T, 3, H, W] (a quarter of float32), the loaders hand them out so, and
`normalize_frames` turns a batch of them into mean/std-normalised floats once it is on the
training device (avbench.data.device_inputs): a quarter of the bytes cross PCIe.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from avbench.data.audio import library_reason
from avbench.data.extractor import SettingsExtractor
from avbench.data.segments import clip_windows
from avbench.errors import DecodeError


@dataclass(frozen=True)
class FrameSettings:
    """Everything that changes the cached frames (normalisation does not: it happens on read)."""

    num_frames: int = 16
    image_size: int = 112
    crop_box: tuple[float, float, float, float] | None = None  # relative x0, y0, x1, y1; None = centre square
    clip_seconds: float = 2.0
    segments: int = 0
    segment_seconds: float = 1.0

    @property
    def row_shape(self) -> tuple[int, ...]:
        """A cached row holds one clip's frames whole."""
        return self.shape

    @property
    def shape(self) -> tuple[int, ...]:
        """One example's tensor: [T, 3, H, W], or [S, T, 3, H, W] with segments."""
        frames = (self.num_frames, 3, self.image_size, self.image_size)
        return (self.segments, *frames) if self.segments else frames

    def key_fields(self) -> dict:
        fields = {"feature": "frames", "version": 1, **asdict(self)}
        if not self.segments:
            fields.pop("segment_seconds")
        return fields

    def sample_times(self, duration: float) -> np.ndarray:
        """Seconds from the video's start of every frame to take, [S or 1, T].

        The clip window is centred on the video; instants outside it (a video shorter than
        the clip) take the first or last frame, as the audio is zero-padded there.
        """
        offset = (duration - self.clip_seconds) / 2
        windows = clip_windows(self.clip_seconds, self.segments, self.segment_seconds)
        fractions = (np.arange(self.num_frames) + 0.5) / self.num_frames
        return np.array([offset + start + fractions * (end - start) for start, end in windows])


class FrameExtractor(SettingsExtractor):
    """File → uint8 frames of `FrameSettings.shape`; picklable, so cache workers can run it."""

    name = "frames"
    dtype = np.uint8
    worker_start_s = 0.5  # numpy + PyAV only

    def __call__(self, path: Path) -> np.ndarray:
        times = self.settings.sample_times(video_duration(path))
        frames = read_frames(path, times.ravel(), self.settings.image_size, self.settings.crop_box)
        return frames.reshape(self.shape)


def video_duration(path: Path) -> float:
    """Seconds from the first frame's start to the last frame's end, from the packets' timestamps
    (demuxed, not decoded). Header metadata is not trusted: a truncated file keeps its old one.
    The last frame lasts the typical frame interval: muxers often leave its duration unset."""
    with _open_video(path) as (stream, packets):
        stamps = sorted(packet.pts for packet in packets if packet.pts is not None)
        time_base, rate = stream.time_base, stream.average_rate
    if not stamps:
        raise DecodeError(path, "no video frames")
    if len(stamps) > 1:
        last = float(np.median(np.diff(stamps)))
    else:
        last = 1 / float(rate * time_base) if rate else 0.0
    return float((stamps[-1] - stamps[0] + last) * time_base)


def read_frames(path: Path, times: np.ndarray, size: int, crop_box=None) -> np.ndarray:
    """uint8 [len(times), 3, size, size]: for each time (seconds from the first frame), the
    frame on screen then, cropped (box or centre square) and resized with area averaging."""
    order = np.argsort(times, kind="stable")
    out = np.empty((len(times), 3, size, size), np.uint8)
    with _open_video(path, decode=True) as (stream, frames):
        fallback_rate = float(stream.average_rate or 25)  # for frames without a timestamp
        taken, start, previous, converted = 0, None, None, (None, None)
        for index, frame in enumerate(frames):
            when = frame.time if frame.time is not None else index / fallback_rate
            start = when if start is None else start
            while taken < len(order) and times[order[taken]] < when - start:
                chosen = previous if previous is not None else frame
                if converted[0] is not chosen:
                    converted = (chosen, _crop_resize(chosen, size, crop_box))
                out[order[taken]] = converted[1]
                taken += 1
            previous = frame
            if taken == len(order):
                break
        if previous is None:
            raise DecodeError(path, "no video frames")
        if taken < len(order):
            out[order[taken:]] = _crop_resize(previous, size, crop_box)
    return out


def _crop_resize(frame, size: int, crop_box) -> np.ndarray:
    import av

    image = frame.to_ndarray(format="rgb24")
    height, width = image.shape[:2]
    if crop_box is None:
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        image = image[top : top + side, left : left + side]
    else:
        x0, y0, x1, y1 = crop_box
        left, right = int(round(x0 * width)), max(int(round(x1 * width)), int(round(x0 * width)) + 1)
        top, bottom = int(round(y0 * height)), max(int(round(y1 * height)), int(round(y0 * height)) + 1)
        image = image[top:bottom, left:right]
    resized = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24").reformat(
        width=size, height=size, interpolation="AREA"
    )
    return resized.to_ndarray(format="rgb24").transpose(2, 0, 1)


class _open_video:
    """A video stream's packets or decoded frames, with PyAV's errors turned into DecodeError."""

    def __init__(self, path: Path, decode: bool = False):
        self.path, self.decode, self.container = Path(path), decode, None

    def __enter__(self):
        import av

        try:
            self.container = av.open(str(self.path))
        except PermissionError as exc:
            raise DecodeError(self.path, exc.strerror or "permission denied") from None
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise DecodeError(self.path, f"not decodable ({library_reason(exc)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise DecodeError(self.path, "no video track")
        stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"
        items = self.container.decode(stream) if self.decode else self.container.demux(stream)
        return stream, _guarded(items, self.path)

    def __exit__(self, *exc) -> None:
        self.container.close()


def _guarded(items, path: Path):
    import av

    try:
        yield from items
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise DecodeError(path, f"not decodable ({library_reason(exc)})") from None


def frame_scale_shift(mean, std) -> tuple[np.ndarray, np.ndarray]:
    """float32 [3, 1, 1] scale and shift per RGB channel: (x − shift) / scale is (x/255 − mean) / std."""
    scale = np.asarray(std, np.float32).reshape(3, 1, 1) * 255.0
    shift = np.asarray(mean, np.float32).reshape(3, 1, 1) * 255.0
    return scale, shift


def normalize_frames(frames, scale, shift):
    """uint8 frames [..., 3, H, W] (a torch tensor) → float32 (x − shift) / scale on their device,
    `scale` and `shift` from frame_scale_shift as tensors on that device. One subtraction and one
    division, each rounded once in float32: the same values on every device."""
    import torch

    return frames.to(torch.float32).sub_(shift).div_(scale)
