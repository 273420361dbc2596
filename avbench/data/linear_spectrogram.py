"""emotions-classify's square linear spectrogram (`data.audio_feature: linear_spectrogram`).

As the seed's EmotionSpectrogramDataset: the whole file's power spectrogram with
n_fft = 2·size − 2 (so exactly `size` frequency bins; torchaudio's defaults otherwise: Hann
window, hop n_fft/2, centred), then its frames cut to the first `size` or zero-padded on the
right to `size`: a [1, size, size] image of raw power, no log and no normalisation, as the seed
fed its EfficientNet and ViT. The clip length (`data.clip_seconds`) does not apply: the image
covers `size` hops of n_fft/2 samples (401 at 16 kHz: 10 s).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from avbench.data.audio import load_audio
from avbench.data.extractor import SettingsExtractor


@dataclass(frozen=True)
class LinearSpectrogramSettings:
    sample_rate: int = 16000
    size: int = 401

    @property
    def n_fft(self) -> int:
        return 2 * self.size - 2

    @property
    def shape(self) -> tuple[int, ...]:
        return (1, self.size, self.size)

    @property
    def row_shape(self) -> tuple[int, ...]:
        return (self.size, self.size)

    def key_fields(self) -> dict:
        return {"feature": "linear_spectrogram", "version": 1, **asdict(self)}


class LinearSpectrogramExtractor(SettingsExtractor):
    """File → float32 [size, size] power spectrogram (float16 would overflow: power reaches
    (n_fft/2)² for a full-scale tone)."""

    name = "linear_spectrogram"
    dtype = np.float32
    worker_start_s = 4.0  # importing torch + torchaudio
    lazy = "_transform"

    def __call__(self, path: Path) -> np.ndarray:
        import torch
        import torchaudio

        if self._transform is None:
            self._transform = torchaudio.transforms.Spectrogram(n_fft=self.settings.n_fft)
        size = self.settings.size
        wave = torch.from_numpy(np.ascontiguousarray(load_audio(path, self.settings.sample_rate), dtype=np.float32))
        with torch.no_grad():
            power = self._transform(wave)[:, :size]  # [size bins, frames]
        image = np.zeros((size, size), dtype=np.float32)
        image[:, : power.shape[1]] = power.numpy()
        return image
