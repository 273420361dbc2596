"""auDeep's spectrograms: mel power spectra in dB relative to the clip's loudest bin, clipped
below one or more thresholds and scaled to [-1, 1], one channel per threshold.

The steps follow auDeep's preprocessor (Freitag et al. 2017): a centred fixed-length window
of the clip, a periodic Hann window of `window_width` seconds moved by `window_width -
window_overlap` seconds without padding (so 5 s at 80 ms / 40 ms gives 124 frames, as
auDeep's do), HTK mel bands from 0 Hz to Nyquist, `10 log10(S / max S)` so the maximum is
0 dB, values below the threshold raised to it, then min-max scaled to [-1, 1]. Thresholds
matter: a high one (-30 dB) keeps only the loudest events, a low one (-75 dB) keeps the
background, and auDeep fuses the representations learned from several.

Rows are cached per file (avbench.data.cache) under these settings, thresholds included.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from avbench.config import DataConfig
from avbench.data.audio import fit_length, load_audio
from avbench.data.extractor import SettingsExtractor
from avbench.errors import ConfigError

POWER_FLOOR = 1e-20  # relative power of an all-zero bin: -200 dB, below any useful threshold


@dataclass(frozen=True)
class SpectrogramSettings:
    """Everything that changes the values, and so belongs in the cache key. Times in seconds,
    as auDeep's `--window-width`, `--window-overlap` and `--fixed-length` take them."""

    sample_rate: int = 16000
    fixed_length: float = 5.0
    window_width: float = 0.08
    window_overlap: float = 0.04
    mel_bands: int = 128
    clip_below: tuple[float, ...] = (-60.0,)

    @classmethod
    def from_data(cls, data: DataConfig) -> SpectrogramSettings:
        """An experiment's data section in auDeep's terms: win_ms is the window width and
        win_ms - hop_ms its overlap, clip_seconds the fixed length, n_mels the mel bands."""
        if data.hop_ms > data.win_ms:
            raise ConfigError(
                f"data.hop_ms ({data.hop_ms}) exceeds data.win_ms ({data.win_ms}): spectrogram "
                "windows would skip samples"
            )
        return cls(
            sample_rate=data.sample_rate,
            fixed_length=data.clip_seconds,
            window_width=round(data.win_ms / 1000, 9),
            window_overlap=round((data.win_ms - data.hop_ms) / 1000, 9),
            mel_bands=data.n_mels,
            clip_below=tuple(float(t) for t in data.clip_below),
        )

    @property
    def num_samples(self) -> int:
        return int(round(self.sample_rate * self.fixed_length))

    @property
    def window_samples(self) -> int:
        return int(round(self.sample_rate * self.window_width))

    @property
    def hop_samples(self) -> int:
        return self.window_samples - int(round(self.sample_rate * self.window_overlap))

    @property
    def num_frames(self) -> int:
        return (self.num_samples - self.window_samples) // self.hop_samples + 1

    @property
    def shape(self) -> tuple[int, int, int]:
        """One example: [thresholds, mel bands, frames]."""
        return (len(self.clip_below), self.mel_bands, self.num_frames)

    row_shape = shape

    def check(self) -> SpectrogramSettings:
        """One clear line for settings that give no spectrogram at all."""
        if self.window_overlap < 0 or self.hop_samples < 1:
            raise ConfigError(
                f"window overlap {self.window_overlap} s must be at least 0 and below the window "
                f"width {self.window_width} s"
            )
        if self.window_samples < 2 or self.num_samples < self.window_samples:
            raise ConfigError(
                f"a {self.window_width} s window needs a fixed length of at least that "
                f"(got {self.fixed_length} s) and at least 2 samples at {self.sample_rate} Hz"
            )
        if not self.clip_below or max(self.clip_below) >= 0:
            raise ConfigError("clip-below thresholds must be negative dB values (the loudest bin is 0 dB)")
        return self

    def key_fields(self) -> dict:
        return {"feature": "audeep-spectrogram", "version": 1, **asdict(self)}

    def describe(self) -> dict:
        """The settings as a file records them (auDeep's names, seconds and dB)."""
        return {**asdict(self), "clip_below": list(self.clip_below), "frames": self.num_frames}


def clip_and_scale(decibels: np.ndarray, threshold: float) -> np.ndarray:
    """Clip below `threshold` dB, then min-max scale to [-1, 1]; a flat spectrogram (silence)
    becomes all -1 rather than a division by zero."""
    clipped = np.maximum(decibels, threshold)
    low, high = float(clipped.min()), float(clipped.max())
    if high - low < 1e-4:
        return np.full_like(clipped, -1.0)
    return 2.0 * (clipped - low) / (high - low) - 1.0


class SpectrogramExtractor(SettingsExtractor):
    """File → float16 [thresholds, mel bands, frames], for the feature cache. The transform is
    built on first use and not pickled, so cache workers receive only the settings."""

    name = "spectrogram"
    dtype = np.float16
    worker_start_s = 4.0  # importing torch + torchaudio, as for log-mel
    lazy = "_mel"

    def __init__(self, settings: SpectrogramSettings):
        super().__init__(settings.check())

    def decibels(self, path: Path) -> np.ndarray:
        """[mel bands, frames] in dB below the clip's loudest bin (max 0 dB), unclipped."""
        import torch
        import torchaudio

        settings = self.settings
        if self._mel is None:
            self._mel = torchaudio.transforms.MelSpectrogram(
                sample_rate=settings.sample_rate,
                n_fft=settings.window_samples,
                hop_length=settings.hop_samples,
                n_mels=settings.mel_bands,
                center=False,
                power=2.0,
                mel_scale="htk",
                f_min=0.0,
            )
        clip = fit_length(load_audio(path, settings.sample_rate), settings.num_samples)
        with torch.no_grad():
            power = self._mel(torch.from_numpy(np.ascontiguousarray(clip))).double().numpy()
        peak = power.max()
        relative = power / peak if peak > 0 else np.zeros_like(power)
        return 10.0 * np.log10(np.maximum(relative, POWER_FLOOR))

    def __call__(self, path: Path) -> np.ndarray:
        decibels = self.decibels(path)
        scaled = [clip_and_scale(decibels, threshold) for threshold in self.settings.clip_below]
        return np.stack(scaled).astype(np.float16)
