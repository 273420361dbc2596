"""Log-mel spectrograms: the input of the spectrogram models.

Computed once per file and feature setting, then read from the cache (avbench.data.cache).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from avbench.data.audio import fit_length, read_mono


@dataclass(frozen=True)
class LogMelSettings:
    """Everything that changes the feature values, and so belongs in the cache key."""

    sample_rate: int = 16000
    clip_seconds: float = 2.0
    n_mels: int = 64
    win_ms: float = 25.0
    hop_ms: float = 10.0

    @property
    def n_fft(self) -> int:
        return int(round(self.sample_rate * self.win_ms / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def num_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    @property
    def num_frames(self) -> int:
        return self.num_samples // self.hop_length + 1

    @property
    def shape(self) -> tuple[int, int, int]:
        return (1, self.n_mels, self.num_frames)

    def key_fields(self) -> dict:
        return {"feature": "logmel", "version": 1, **asdict(self)}


class LogMelExtractor:
    """File → float16 array [n_mels, frames]; builds the torchaudio transforms once."""

    def __init__(self, settings: LogMelSettings):
        import torchaudio

        self.settings = settings
        self._mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=settings.sample_rate,
            n_fft=settings.n_fft,
            hop_length=settings.hop_length,
            n_mels=settings.n_mels,
            center=True,
        )
        self._db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=80.0)

    def __call__(self, path: Path) -> np.ndarray:
        import torch
        import torchaudio.functional as AF

        wave, rate = read_mono(path)
        signal = torch.from_numpy(np.ascontiguousarray(wave))
        if rate != self.settings.sample_rate:
            signal = AF.resample(signal, rate, self.settings.sample_rate)
        signal = torch.from_numpy(fit_length(signal.numpy(), self.settings.num_samples))
        with torch.no_grad():
            mel = self._db(self._mel(signal))
        # Per-clip standardisation keeps the loudness of a recording from being a class cue.
        mel = (mel - mel.mean()) / (mel.std() + 1e-5)
        return mel.numpy().astype(np.float16)
