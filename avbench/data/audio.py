"""Audio decoding: soundfile for WAV/FLAC/OGG, PyAV (FFmpeg) for everything else.

soundfile is exact and fast for the formats libsndfile owns (8/16/24/32-bit PCM, float,
FLAC, Vorbis/Opus in OGG); PyAV decodes MP3, M4A/AAC and the audio track of video
containers (FLV, MP4, WebM…), which is where some datasets keep their only copy of the
audio. Both paths give float32 mono (channels averaged) at the file's own rate; `load_audio`
then resamples with torchaudio, so every format reaches the features the same way.
torchaudio.load is not used: in torch 2.11 it needs torchcodec and a system FFmpeg.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from avbench.errors import DecodeError

# What libsndfile decodes natively; anything else (or a file it rejects) goes to PyAV.
SOUNDFILE_SUFFIXES = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff"})
# A file this small is a canonical WAV header with no samples: listed as empty without decoding.
EMPTY_WAV_BYTES = 44


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    """Decode a file to float32 mono in [-1, 1] and its native sample rate.

    Raises DecodeError with a short reason for anything that is not usable audio.
    """
    path = Path(path)
    try:  # opened here first: the libraries would hide "Permission denied" in their own messages
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        raise DecodeError(path, exc.strerror or type(exc).__name__) from None
    if size == 0:
        raise DecodeError(path, "empty file (0 bytes)")
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        try:
            wave, rate = _read_soundfile(path)
        except DecodeError as soundfile_error:
            # A WAV holding e.g. MP3 or an ADPCM flavour libsndfile lacks: FFmpeg may know it.
            try:
                wave, rate = _read_pyav(path)
            except DecodeError:
                raise soundfile_error from None
    else:
        wave, rate = _read_pyav(path)
    if wave.size == 0:
        raise DecodeError(path, "no audio samples")
    if not np.isfinite(wave).all():
        raise DecodeError(path, "audio holds NaN or infinite samples")
    return wave, rate


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    try:
        wave, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except PermissionError as exc:
        raise DecodeError(path, exc.strerror or "permission denied") from None
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        raise DecodeError(path, f"not decodable ({library_reason(exc)})") from None
    return wave.mean(axis=1, dtype=np.float32), int(rate)


def _read_pyav(path: Path) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
                raise DecodeError(path, f"no audio track ({kinds})")
            stream = container.streams.audio[0]
            # Planar float keeps the file's layout and rate: one row per channel.
            resampler = av.AudioResampler(format="fltp")
            chunks: list[np.ndarray] = []
            rate = stream.rate
            for frame in container.decode(stream):
                rate = frame.sample_rate or rate
                chunks.extend(out.to_ndarray() for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray() for out in resampler.resample(None))
    except PermissionError as exc:
        raise DecodeError(path, exc.strerror or "permission denied") from None
    except (av.FFmpegError, OSError, ValueError, RuntimeError) as exc:
        raise DecodeError(path, f"not decodable ({library_reason(exc)})") from None
    if not chunks or not rate:
        return np.zeros(0, np.float32), int(rate or 0)
    return np.concatenate(chunks, axis=1).mean(axis=0, dtype=np.float32), int(rate)


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """torchaudio's band-limited (sinc) resampling; a no-op at the target rate."""
    if rate == target:
        return wave
    import torch
    import torchaudio.functional as AF

    with torch.no_grad():
        return AF.resample(torch.from_numpy(np.ascontiguousarray(wave)), rate, target).numpy()


def load_audio(path: Path, sample_rate: int) -> np.ndarray:
    """float32 mono at `sample_rate`, from any supported file."""
    wave, rate = read_mono(path)
    return resample(wave, rate, sample_rate)


def fit_length(wave: np.ndarray, length: int) -> np.ndarray:
    """Centre-crop or zero-pad to exactly `length` samples (deterministic, so cacheable)."""
    if len(wave) >= length:
        start = (len(wave) - length) // 2
        return wave[start : start + length]
    pad = length - len(wave)
    return np.pad(wave, (pad // 2, pad - pad // 2))


def library_reason(exc: BaseException) -> str:
    """A decoding library's reason without the file name it repeats (the caller names the file)."""
    reason = getattr(exc, "error_string", None) or getattr(exc, "strerror", None) or str(exc)
    text = str(reason).strip().splitlines()
    return text[0].rstrip(".") if text else type(exc).__name__
