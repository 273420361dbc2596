"""Video files for the stand-ins: MP4 (H.264 video and AAC audio) as RAVDESS and OpenAV ship
them, FLV (Sorenson H.263 and MP3) as CREMA-D does.

PyAV's wheel carries libx264 and FFmpeg's native AAC encoder. x264 runs single-threaded with
the `ultrafast` preset (files are bit-identical for a seed, and several clips encode at once
on threads); the AAC encoder uses its fast coder, about 3–4× quicker than the default
(benchmarks/standins.py measures both).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_mp4(
    path: Path,
    frames: np.ndarray,
    wave: np.ndarray | None,
    *,
    fps: int,
    sample_rate: int = 48000,
) -> None:
    """Mux uint8 RGB `frames` (T, H, W, 3) as H.264 and, unless `wave` is None, the mono
    float `wave` as AAC at `sample_rate` into an MP4 at `path`. H and W must be even."""
    import av

    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "threads": "1"})
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = "yuv420p"
        audio = None
        if wave is not None:
            audio = container.add_stream("aac", rate=sample_rate, options={"aac_coder": "fast"})
            audio.layout = "mono"
        for image in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
        if audio is not None:
            pcm = (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16)[None, :]
            chunk = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            chunk.sample_rate = sample_rate
            container.mux(audio.encode(chunk))
            container.mux(audio.encode())


def widen(frames: np.ndarray, width: int) -> np.ndarray:
    """Pad square frames left and right with their edge colour (the background) to `width`,
    e.g. 72×72 → 128×72 for RAVDESS's 16:9."""
    extra = width - frames.shape[2]
    if extra < 0:
        raise ValueError(f"frames are {frames.shape[2]} wide, wider than {width}")
    left, right = extra // 2, extra - extra // 2
    # Repeating the edge columns is ~1.6× quicker than np.pad(mode="edge").
    return np.concatenate(
        [np.repeat(frames[:, :, :1], left, axis=2), frames, np.repeat(frames[:, :, -1:], right, axis=2)], axis=2
    )


def mouth_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """The `size`×`size` region around the mouth of `synth.face_frames` drawn at 2×size: lips,
    their opening and curvature, and the cheeks' tint, as a lip-reading crop (OpenAV: 88×88)."""
    full = frames.shape[1]
    if full < 2 * size:
        raise ValueError(f"draw the face at {2 * size} pixels or more to crop {size}")
    top = int(0.74 * full) - size // 2
    left = full // 2 - size // 2
    return np.ascontiguousarray(frames[:, top : top + size, left : left + size])


def copy_video_track(source: Path, target: Path) -> None:
    """Write the video stream of `source` alone into a new MP4 at `target` without re-encoding
    (RAVDESS's 02 "video-only" files are its 01 files without sound)."""
    import av

    with av.open(str(source)) as reader, av.open(str(target), "w", format="mp4") as writer:
        stream = reader.streams.video[0]
        copy = writer.add_stream_from_template(stream)
        for packet in reader.demux(stream):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            packet.stream = copy
            writer.mux(packet)


def write_flv(
    path: Path,
    frames: np.ndarray,
    wave: np.ndarray,
    *,
    fps: int = 15,
    sample_rate: int = 16000,
    audio_codec: str = "mp3",
    audio_rate: int = 22050,
) -> None:
    """Mux FLV1 (Sorenson H.263) video and an audio track into `path` with PyAV.

    MP3 in FLV must be 11.025/22.05/44.1 kHz, so PyAV's encoder resamples the 16 kHz audio
    (the FLV muxer rejects 16 kHz MP3; "aac" accepts `audio_rate=16000`).
    LAME's fastest setting (compression_level 9) keeps encoding at ~20 ms per clip instead
    of ~60 ms.
    """
    import av

    with av.open(str(path), "w", format="flv") as container:
        video = container.add_stream("flv", rate=fps)
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = "yuv420p"
        video.bit_rate = 200_000
        options = {"compression_level": "9"} if audio_codec == "mp3" else {}
        audio = container.add_stream(audio_codec, rate=audio_rate, options=options)
        audio.layout = "mono"
        for image in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
        pcm = (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16)[None, :]
        chunk = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        chunk.sample_rate = sample_rate
        container.mux(audio.encode(chunk))
        container.mux(audio.encode())
