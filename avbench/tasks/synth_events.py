"""Synthetic environmental sounds for the ESC-50 / ESC-10 stand-ins.

A class is a kind of sound: where its noisy energy sits (band centre and width), how tonal
it is (pitch, glide, brightness) and how it unfolds in time (bursts at a rate with a decay,
like barks, ticks or footsteps, or a slowly modulated texture, like rain or an engine). Each
cue takes evenly spaced values over the classes in its own permutation (as
`synth.class_profile` does), so classes close in one cue are far apart in others.

A recording (ESC-50's `src_file`) has its own microphone colour, room noise and a somewhat
higher or lower, faster or slower instance of the sound; every clip has its own jitter, length
and level, so loudness and duration carry no class information. Clips shorter than the
nominal length are padded with digital silence, as ESC-50's are. numpy only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

_PROFILE_SEED = 20240612
_ATTACK_S = 0.003


@dataclass(frozen=True)
class EventProfile:
    """The cues that make one sound class recognisable, whichever recording it comes from."""

    index: int
    centre_hz: float  # centre of the noisy component's band
    bandwidth_octaves: float
    tonal_share: float  # 0 = pure noise … 0.85 = mostly harmonic
    pitch_hz: float  # fundamental of the harmonic component
    glide_semitones: float  # pitch change across one burst (a siren's sweep, a rooster's crow)
    harmonics: int
    burst_rate: float  # Hz; 0 = a continuous texture
    burst_decay_s: float
    am_rate: float  # Hz, slow modulation of a texture
    am_depth: float


@dataclass(frozen=True)
class RecordingProfile:
    """One source recording: the nuisance a model must ignore to generalise across folds."""

    tilt_db_per_octave: float  # microphone and distance colour above 500 Hz
    resonance_hz: float  # a room or microphone resonance of its own
    resonance_db: float
    snr_db: float  # background noise below the sound
    pitch_scale: float  # a smaller dog, a faster engine
    rate_scale: float


def event_profile(index: int, n_classes: int) -> EventProfile:
    """A deterministic profile for sound class `index` of `n_classes`; two in three classes
    are bursty, the others textures."""
    if not 0 <= index < n_classes:
        raise ValueError(f"class index {index} out of range for {n_classes} classes")
    rng = np.random.default_rng([_PROFILE_SEED, n_classes])
    span = max(n_classes - 1, 1)
    u = [float(rng.permutation(n_classes)[index]) / span for _ in range(10)]
    bursty = int(rng.permutation(n_classes)[index]) % 3 != 0
    return EventProfile(
        index=index,
        centre_hz=float(150.0 * 2 ** (5.5 * u[0])),
        bandwidth_octaves=0.25 + 1.25 * u[1],
        tonal_share=0.85 * u[2],
        pitch_hz=float(80.0 * 2 ** (4.5 * u[3])),
        glide_semitones=-12.0 + 24.0 * u[4],
        harmonics=1 + int(round(7 * u[5])),
        burst_rate=float(0.6 * 2 ** (4.0 * u[6])) if bursty else 0.0,
        burst_decay_s=float(0.012 * 2 ** (4.5 * u[7])),
        am_rate=float(0.3 * 2 ** (4.0 * u[8])),
        am_depth=0.2 + 0.6 * u[9],
    )


def recording_profile(rng: np.random.Generator) -> RecordingProfile:
    return RecordingProfile(
        tilt_db_per_octave=float(rng.uniform(-3.0, 3.0)),
        resonance_hz=float(np.exp(rng.uniform(np.log(200.0), np.log(6000.0)))),
        resonance_db=float(rng.uniform(0.0, 8.0)),
        snr_db=float(rng.uniform(8.0, 30.0)),
        pitch_scale=float(2 ** rng.uniform(-0.25, 0.25)),
        rate_scale=float(rng.uniform(0.8, 1.25)),
    )


def _fast_size(n: int) -> int:
    """A power of two ≥ n: an FFT of a clip's own length (often with a large prime factor)
    is several times slower (benchmarks/standins.py)."""
    return 1 << max(n - 1, 0).bit_length()


@functools.lru_cache(maxsize=8)
def _log_freqs(size: int, sample_rate: int) -> np.ndarray:
    """log2 of the rfft bin frequencies (floored at 20 Hz), shared by every clip of one length."""
    return np.log2(np.maximum(np.fft.rfftfreq(size, 1.0 / sample_rate), 20.0)).astype(np.float32)


def _colour_db(log_freqs: np.ndarray, recording: RecordingProfile) -> np.ndarray:
    """The recording's microphone / room colour in dB at the given log2 frequencies."""
    octaves = log_freqs - np.float32(np.log2(500.0))
    tilt = np.maximum(octaves, 0.0) * np.float32(recording.tilt_db_per_octave)
    bump = np.exp(np.float32(-0.5 / 0.4**2) * (log_freqs - np.float32(np.log2(recording.resonance_hz))) ** 2)
    return tilt + np.float32(recording.resonance_db) * bump


def _background(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit-RMS room noise between white and brown, cheaply: uniform white noise plus a share
    of its running sum (1/f²) with the slow drift (block means, interpolated) removed."""
    white = rng.random(n, dtype=np.float32) - np.float32(0.5)
    brown = np.cumsum(white)
    block = min(n, 2048)
    centres = np.arange(block // 2, n - block // 2 + 1, block)
    means = brown[: len(centres) * block].reshape(-1, block).mean(axis=1)
    brown -= np.interp(np.arange(n), centres, means).astype(np.float32)
    brown /= np.sqrt(np.mean(brown**2)) + np.float32(1e-6)
    white /= np.float32(np.sqrt(1 / 12))
    share = np.float32(rng.uniform(0.0, 0.6))
    noise = (1 - share) * white + share * brown
    return noise / (np.sqrt(np.mean(noise**2)) + np.float32(1e-6))


def _phase(f0: np.ndarray, sample_rate: int, block: int = 1024) -> np.ndarray:
    """2π·∫f0 dt as float32 without drift: float32 running sums inside blocks, each block's
    start wrapped to whole cycles in float64 (a float32 sum over 220 500 samples would drift)."""
    n = len(f0)
    padded = np.concatenate([f0, np.zeros((-n) % block, np.float32)]).reshape(-1, block)
    local = np.cumsum(padded * np.float32(1.0 / sample_rate), axis=1)
    starts = np.concatenate([[0.0], np.cumsum(local[:, -1], dtype=np.float64)[:-1]]) % 1.0
    return ((local + starts[:, None].astype(np.float32)) * np.float32(2 * np.pi)).reshape(-1)[:n]


def _timeline(
    rng: np.random.Generator, n: int, sample_rate: int, profile: EventProfile, recording: RecordingProfile
) -> tuple[np.ndarray, np.ndarray]:
    """(amplitude envelope, position 0..1 within the current burst) for every sample, float32."""
    t = np.arange(n, dtype=np.float32) / np.float32(sample_rate)
    if profile.burst_rate <= 0:
        rate = profile.am_rate * recording.rate_scale * rng.uniform(0.85, 1.15)
        phase = np.float32(2 * np.pi * rate) * t
        envelope = 1.0 - np.float32(profile.am_depth) * (0.5 + 0.5 * np.sin(phase + np.float32(rng.uniform(0, 6.3))))
        position = 0.5 + 0.5 * np.sin(np.float32(0.5) * phase + np.float32(rng.uniform(0, 6.3)))
        return envelope, position
    rate = profile.burst_rate * recording.rate_scale * rng.uniform(0.9, 1.1)
    gaps = rng.uniform(0.8, 1.2, size=int(n / sample_rate * rate) + 2) / rate
    onsets = np.cumsum(gaps) - gaps[0] * rng.uniform(0.2, 1.0)
    onsets = (onsets[(onsets >= 0) & (onsets < n / sample_rate)] * sample_rate).astype(np.int32)
    marks = np.full(n, -(10**9), dtype=np.int32)
    marks[onsets] = onsets
    since = (np.arange(n, dtype=np.int32) - np.maximum.accumulate(marks)).astype(np.float32) / np.float32(sample_rate)
    decay = profile.burst_decay_s * rng.uniform(0.8, 1.25)
    envelope = np.exp(since * np.float32(-1.0 / decay)) * np.minimum(since * np.float32(1.0 / _ATTACK_S), 1.0)
    return envelope, np.clip(since * np.float32(rate), 0.0, 1.0)


def sound_event(
    rng: np.random.Generator,
    *,
    sample_rate: int,
    seconds: float,
    profile: EventProfile,
    recording: RecordingProfile,
    full_length_share: float = 0.5,
) -> np.ndarray:
    """A float32 clip of exactly `seconds`: the sound (full length for `full_length_share` of
    clips, else 1 s or more) with background noise, then digital silence.

    float32 where it matters (numpy's float32 sin/cos are ~25× faster than float64's) and one
    FFT per clip: ESC-50 clips are long (220 500 samples), and a tiny stand-in has 250 of them.
    """
    total = int(round(seconds * sample_rate))
    active = seconds if rng.random() < full_length_share else rng.uniform(min(1.0, seconds), seconds)
    n = int(round(active * sample_rate))
    size = _fast_size(n)
    log_freqs = _log_freqs(size, sample_rate)
    colour = _colour_db(log_freqs, recording)
    envelope, position = _timeline(rng, n, sample_rate, profile, recording)

    centre = np.log2(profile.centre_hz * recording.pitch_scale**0.5 * rng.uniform(0.9, 1.1))
    width = profile.bandwidth_octaves * rng.uniform(0.85, 1.15)
    gain_db = np.float32(-0.5 * 8.686 / width**2) * (log_freqs - np.float32(centre)) ** 2 + colour
    spectrum = np.empty(size // 2 + 1, dtype=np.complex64)  # white Gaussian noise, drawn in frequency
    spectrum.real = rng.standard_normal(len(spectrum), dtype=np.float32)
    spectrum.imag = rng.standard_normal(len(spectrum), dtype=np.float32)
    spectrum *= np.power(np.float32(10.0), gain_db / np.float32(20.0))
    noise = np.fft.irfft(spectrum, size)[:n]
    noise = noise.astype(np.float32) / np.float32(np.sqrt(np.mean(noise**2)) + 1e-12)

    pitch = profile.pitch_hz * recording.pitch_scale * rng.uniform(0.94, 1.06)
    glide = profile.glide_semitones * rng.uniform(0.8, 1.2) / 12.0
    f0 = np.float32(pitch) * np.exp2(np.float32(glide) * (position - np.float32(0.5)))
    phase = _phase(f0, sample_rate)
    # sin(k·phase) by the Chebyshev recurrence: one sin and cos instead of one sin per harmonic.
    current, previous, twice_cos = np.sin(phase), np.zeros(n, np.float32), np.float32(2.0) * np.cos(phase)
    tone = np.zeros(n, np.float32)
    harmonics = np.arange(1, profile.harmonics + 1)
    harmonics = harmonics[harmonics * float(f0.max()) < 0.45 * sample_rate]
    # The recording's colour at each harmonic, so the tone is coloured like the noise.
    gains = 10.0 ** (_colour_db(np.log2(pitch * harmonics), recording) / 20.0) / harmonics
    for gain in gains:
        tone += current * np.float32(gain)
        current, previous = twice_cos * current - previous, current
    tone /= np.float32(np.sqrt(np.mean(tone**2)) + 1e-12)

    share = float(np.clip(profile.tonal_share + rng.uniform(-0.08, 0.08), 0.0, 0.9))
    sound = (np.float32(np.sqrt(share)) * tone + np.float32(np.sqrt(1.0 - share)) * noise) * envelope
    audible = envelope > 0.05
    if audible.any():
        sound /= np.float32(np.sqrt(np.mean(sound[audible] ** 2)) + 1e-12)
    sound += _background(rng, n) * np.float32(10.0 ** (-recording.snr_db / 20.0))

    level_db = rng.uniform(-28.0, -16.0)
    sound *= np.float32(10.0 ** (level_db / 20.0) / (np.sqrt(np.mean(sound**2)) + 1e-12))
    peak = float(np.abs(sound).max())
    if peak > 0.99:
        sound *= np.float32(0.99 / peak)
    clip = np.zeros(total, dtype=np.float32)
    clip[:n] = sound[:total]
    return clip
