"""Audio decoding: soundfile for WAV/FLAC/OGG (torchaudio.load would need torchcodec + FFmpeg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from avbench.errors import DatasetError


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    """Decode a file to float32 mono in [-1, 1] and its native sample rate."""
    try:
        wave, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise DatasetError(f"cannot decode {path}: {exc}") from None
    if wave.shape[0] == 0:
        raise DatasetError(f"{path} is empty (no samples)")
    return wave.mean(axis=1), rate


def fit_length(wave: np.ndarray, length: int) -> np.ndarray:
    """Centre-crop or zero-pad to exactly `length` samples (deterministic, so cacheable)."""
    if len(wave) >= length:
        start = (len(wave) - length) // 2
        return wave[start : start + length]
    pad = length - len(wave)
    return np.pad(wave, (pad // 2, pad - pad // 2))
