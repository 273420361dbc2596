"""The domain-shifted stand-in's test split (`avbench data synth TASK --domain-shift`): voices and
a channel from another corpus, built on the speech-like synthesis of avbench.tasks.synth."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from avbench.tasks.synth import SpeakerProfile, _bump_db, _fft_size, _gaussian_spectrum

# The test split of a domain-shifted stand-in (`avbench data synth TASK --domain-shift`) differs
# from train and val as another corpus would: higher voices, a telephone-like channel with a
# resonance, and louder brown (1/f²) noise instead of the near-white background.
SHIFT_F0_SCALE = 1.45
SHIFT_BAND_HZ = (300.0, 3400.0)
SHIFT_SNR_DB = (3.0, 12.0)


def shifted_speaker(speaker: SpeakerProfile) -> SpeakerProfile:
    """The speaker as the other corpus records voices: a pitch range above the training one."""
    return replace(speaker, f0=speaker.f0 * SHIFT_F0_SCALE)


def through_other_channel(wave: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """The clip through the other corpus's channel: band-limited with a resonance near 2 kHz,
    then brown noise at a low SNR; the level is kept."""
    n = len(wave)
    size = _fft_size(n)
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    low, high = SHIFT_BAND_HZ
    response = 1.0 / np.sqrt(1.0 + (low / np.maximum(freqs, 1.0)) ** 4) / np.sqrt(1.0 + (freqs / high) ** 8)
    response = response * 10.0 ** (8.0 * _bump_db(freqs, rng.uniform(1700.0, 2300.0), 0.3) / 20.0)
    shaped = np.fft.irfft(np.fft.rfft(wave, size) * response, size)[:n]
    brown = np.fft.irfft(_gaussian_spectrum(rng, size) / np.maximum(freqs, 20.0), size)[:n]
    level = np.sqrt(np.mean(shaped**2)) + 1e-9
    noise = brown / (np.sqrt(np.mean(brown**2)) + 1e-9) * level * 10.0 ** (-rng.uniform(*SHIFT_SNR_DB) / 20.0)
    out = (shaped + noise) * np.sqrt(np.mean(wave**2)) / (np.sqrt(np.mean((shaped + noise) ** 2)) + 1e-9)
    peak = np.abs(out).max()
    return (out * (0.99 / peak) if peak > 0.99 else out).astype(np.float32)
