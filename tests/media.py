"""Writers for the real audio and video files the data-path tests decode (soundfile, PyAV)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf


def tone(seconds: float, rate: int, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_wav(path: Path, wave: np.ndarray, rate: int, subtype: str = "PCM_16", fmt: str | None = None) -> Path:
    """soundfile's own writer: WAV subtypes (PCM_U8, PCM_24, FLOAT…), FLAC, OGG."""
    sf.write(str(path), wave, rate, subtype=subtype, format=fmt)
    return path


def _encode_audio(container, wave: np.ndarray, rate: int, codec: str, stream_rate: int | None = None):
    import av

    stream = container.add_stream(codec, rate=stream_rate or rate)
    stream.layout = "mono"
    pcm = (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16)[None, :]
    frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    frame.sample_rate = rate
    return stream, frame


def write_audio_av(
    path: Path, wave: np.ndarray, rate: int, *, container_format: str, codec: str, stream_rate: int | None = None
) -> Path:
    """An audio-only file through FFmpeg (MP3, M4A/AAC, WebM/Opus)."""
    import av

    with av.open(str(path), "w", format=container_format) as container:
        stream, frame = _encode_audio(container, wave, rate, codec, stream_rate)
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_video(
    path: Path,
    draw: Callable[[float], np.ndarray],
    times: Sequence[float],
    *,
    container_format: str = "mp4",
    codec: str = "mpeg4",
    size: tuple[int, int] = (64, 48),
    audio: tuple[np.ndarray, int] | None = None,
    audio_codec: str = "aac",
) -> Path:
    """A video whose frame shown from `times[i]` on is `draw(times[i])` (RGB uint8, H×W×3).

    Timestamps are set explicitly (millisecond time base), so `times` may be irregular: a
    variable-frame-rate file like a phone's.
    """
    import av

    width, height = size
    with av.open(str(path), "w", format=container_format) as container:
        video = container.add_stream(codec, rate=Fraction(1000, 1) if codec != "flv" else 30)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = Fraction(1, 1000)
        video.codec_context.time_base = Fraction(1, 1000)
        video.bit_rate = 4_000_000
        if codec == "mpeg4":
            video.codec_context.qmax = 3
        audio_stream = audio_frame = None
        if audio is not None:
            audio_stream, audio_frame = _encode_audio(container, audio[0], audio[1], audio_codec)
        for when in times:
            frame = av.VideoFrame.from_ndarray(draw(when), format="rgb24")
            frame.pts = int(round(when * 1000))
            frame.time_base = Fraction(1, 1000)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if audio_stream is not None:
            for packet in [*audio_stream.encode(audio_frame), *audio_stream.encode(None)]:
                container.mux(packet)
    return path


def gray(level: float, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    width, height = size
    return np.full((height, width, 3), int(round(level)), np.uint8)


class ListedTask:
    """A task over files a test wrote: (audio path, video path or None, label, split) rows.

    Not registered (so it never shows up in `avbench list tasks`); it has the Task contract's
    attributes, which is all prepare_data uses.
    """

    name = "listed"
    heads: dict = {}  # one target per file
    modalities = ("audio", "video")
    layout = "a list of files"

    def __init__(self, rows, classes=("a", "b")):
        self.rows, self.classes, self.skipped = list(rows), tuple(classes), []

    def items(self, root, data):
        from avbench.spec import Item

        return [
            Item(audio=Path(audio), label=label, speaker=f"s{i}", split=split, video=Path(video) if video else None)
            for i, (audio, video, label, split) in enumerate(self.rows)
        ]
