"""Audio features: log-mel spectrograms (spectrogram models) and raw waveforms (wav2vec2,
Perceiver), each computed once per file and setting, then read from the cache
(avbench.data.cache). Which one a run uses is `data.audio_feature`, by default the one the
model declares (`register_model(..., audio_input=...)`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from avbench.data.audio import fit_length, load_audio
from avbench.data.extractor import SettingsExtractor
from avbench.data.segments import sample_windows


@dataclass(frozen=True)
class ClipSettings:
    """The clip every audio feature is cut from: `clip_seconds` at `sample_rate`, whole or in
    `segments` windows of `segment_seconds` (the same windows the video uses)."""

    sample_rate: int = 16000
    clip_seconds: float = 2.0
    segments: int = 0  # 0 = one window over the whole clip
    segment_seconds: float = 1.0

    @property
    def num_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    @property
    def window_samples(self) -> int:
        """Samples per model input: the clip, or one segment."""
        return int(round(self.sample_rate * self.segment_seconds)) if self.segments else self.num_samples

    def windows(self) -> list[tuple[int, int]]:
        return sample_windows(self.num_samples, self.segments, self.window_samples)

    def _key(self, feature: str) -> dict:
        """Everything that changes the feature values, and so belongs in the cache key."""
        fields = {"feature": feature, "version": 1, **asdict(self)}
        if not self.segments:
            fields.pop("segment_seconds")
        return fields


@dataclass(frozen=True)
class LogMelSettings(ClipSettings):
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
    def num_frames(self) -> int:
        return self.window_samples // self.hop_length + 1

    @property
    def shape(self) -> tuple[int, ...]:
        """One example's tensor: [1, mels, frames], or [S, 1, mels, frames] with segments."""
        image = (1, self.n_mels, self.num_frames)
        return (self.segments, *image) if self.segments else image

    @property
    def row_shape(self) -> tuple[int, ...]:
        """What the cache stores per file: the shape without the channel axis."""
        image = (self.n_mels, self.num_frames)
        return (self.segments, *image) if self.segments else image

    def key_fields(self) -> dict:
        return self._key("logmel")


class LogMelExtractor(SettingsExtractor):
    """File → float16 [n_mels, frames] (or [S, n_mels, frames]); the torchaudio transforms are
    built on first use and not pickled, so a cache hit never builds them and worker processes
    receive only the settings."""

    name = "logmel"
    dtype = np.float16
    worker_start_s = 4.0  # importing torch + torchaudio: 3.3 s measured on a busy 2-core machine
    lazy = "_transforms"

    def _build(self):
        import torchaudio

        settings = self.settings
        mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=settings.sample_rate,
            n_fft=settings.n_fft,
            hop_length=settings.hop_length,
            n_mels=settings.n_mels,
            center=True,
        )
        return mel, torchaudio.transforms.AmplitudeToDB(stype="power", top_db=80.0)

    def __call__(self, path: Path) -> np.ndarray:
        import torch

        if self._transforms is None:
            self._transforms = self._build()
        mel_transform, to_db = self._transforms
        settings = self.settings
        clip = fit_length(load_audio(path, settings.sample_rate), settings.num_samples)
        signal = torch.from_numpy(np.stack([clip[start:end] for start, end in settings.windows()]))
        with torch.no_grad():
            mel = standardised_logmel(signal, mel_transform, to_db).numpy().astype(np.float16)
        return mel if settings.segments else mel[0]


def standardised_logmel(signal, mel_transform, to_db):
    """Waves [N, samples] → standardised log-mel images [N, mels, frames]; the cache's rows and
    the log-mel computed in the batch from cached waveforms (avbench.augment) are both this."""
    # [N, 1, mels, frames]: AmplitudeToDB's top_db then clamps each window on its own.
    mel = to_db(mel_transform(signal).unsqueeze(1)).squeeze(1)
    # Per-image standardisation keeps the loudness of a recording from being a class cue.
    flat = mel.flatten(1)
    return (mel - flat.mean(1)[:, None, None]) / (flat.std(1)[:, None, None] + 1e-5)


class BatchLogMel:
    """The cache's log-mel of a batch of waveforms [B, (S,) 1, samples] → [B, (S,) 1, mels, frames],
    computed on the batch's device: what a log-mel model reads when waveform augmentation needs
    the cache to keep waveforms."""

    def __init__(self, settings: LogMelSettings):
        self.settings = settings
        self._transforms = None

    def __call__(self, wave):
        import torch

        if self._transforms is None or self._transforms[0].spectrogram.window.device != wave.device:
            self._transforms = tuple(t.to(wave.device) for t in LogMelExtractor(self.settings)._build())
        with torch.no_grad():
            mel = standardised_logmel(wave.reshape(-1, wave.shape[-1]).float(), *self._transforms)
        return mel.reshape(*wave.shape[:-1], *mel.shape[-2:])


@dataclass(frozen=True)
class WaveformSettings(ClipSettings):
    """Raw samples of the clip: nothing to set beyond the clip itself."""

    @property
    def shape(self) -> tuple[int, ...]:
        """One example's tensor: [1, samples] (one channel), or [S, 1, samples] with segments."""
        wave = (1, self.window_samples)
        return (self.segments, *wave) if self.segments else wave

    @property
    def row_shape(self) -> tuple[int, ...]:
        return (self.segments, self.window_samples) if self.segments else (self.window_samples,)

    def key_fields(self) -> dict:
        return self._key("waveform")


class WaveformExtractor(SettingsExtractor):
    """File → float16 mono samples at the run's rate, centre-cropped/padded to the clip (or cut
    into the same segments as the log-mel and video). float16 keeps a 66 dB SNR, far below any
    recording's noise floor, at half the cache size. No normalisation here: the models apply
    their own (wav2vec2's zero-mean unit-variance, as its feature extractor does)."""

    name = "waveform"
    dtype = np.float16
    worker_start_s = 1.0  # numpy + soundfile only

    def __call__(self, path: Path) -> np.ndarray:
        settings = self.settings
        clip = fit_length(load_audio(path, settings.sample_rate), settings.num_samples)
        waves = np.stack([clip[start:end] for start, end in settings.windows()]).astype(np.float16)
        return waves if settings.segments else waves[0]
