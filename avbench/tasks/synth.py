"""Synthetic speech-like audio and face-like video for the dataset stand-ins.

A stand-in must be learnable (so a pipeline bug shows up as chance accuracy) but not trivially
so: every class differs from every other in several cues at once (syllable rate, f0 contour,
emphasised band, spectral tilt, breathiness); speakers differ in f0, formants and loudness
and have habits in those same cues; every clip gets its own duration, onset, noise, gain and
cue jitter. Loudness and duration carry no class information. Tuned so that a small CNN on
64-band log-mels reaches ~0.9 on unseen speakers, not 1.0. Everything is drawn from a numpy
Generator, so a seed fixes it. numpy only: the video containers are written by avbench.tasks.synth_av.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONTOURS = ("flat", "rise", "fall", "vibrato", "arch")
_PROFILE_SEED = 20240611


@dataclass(frozen=True)
class ClassProfile:
    """The cues that make one class recognisable, whoever speaks it."""

    index: int
    am_rate: float  # Hz: syllable-like envelope modulation
    am_depth: float  # 0..1
    contour: str  # one of CONTOURS
    contour_depth: float  # semitones
    f0_scale: float  # multiplies the speaker's f0
    band_hz: float  # centre of the emphasised band (before the speaker's formant scale)
    band_gain_db: float
    tilt_db_per_octave: float  # slope above 500 Hz
    noise_fraction: float  # breathy share of the source energy, 0..1


@dataclass(frozen=True)
class SpeakerProfile:
    """What differs between speakers: the nuisance a speaker-independent model must ignore.

    Besides pitch, vocal-tract length and loudness, a speaker has habits in the very cues the
    classes use (speaking rate, brightness, breathiness, a resonance of their own), so a
    model cannot separate classes by one cue's absolute value.
    """

    f0: float  # Hz
    formant_scale: float  # vocal-tract length: scales formants and the emphasised band
    loudness_db: float
    rate_scale: float  # multiplies the class's syllable rate
    tilt_offset: float  # dB/octave added to the class's tilt
    breathiness: float  # added to the class's noise fraction
    quirk_hz: float  # a resonance of this speaker's own
    quirk_db: float
    skin: tuple[int, int, int]  # RGB, for the face video


def class_profile(index: int, n_classes: int) -> ClassProfile:
    """A deterministic profile for class `index` of `n_classes`.

    Each cue takes evenly spaced values over the classes, in its own fixed permutation, so two
    classes that are close in one cue are far apart in others.
    """
    if not 0 <= index < n_classes:
        raise ValueError(f"class index {index} out of range for {n_classes} classes")
    rng = np.random.default_rng([_PROFILE_SEED, n_classes])
    span = max(n_classes - 1, 1)
    u = [float(rng.permutation(n_classes)[index]) / span for _ in range(7)]
    contour = CONTOURS[int(rng.permutation(n_classes)[index]) % len(CONTOURS)]
    return ClassProfile(
        index=index,
        am_rate=2.0 + 6.0 * u[0],
        am_depth=0.45 + 0.45 * u[1],
        contour=contour,
        contour_depth=2.5 + 4.5 * u[2],
        f0_scale=0.85 + 0.4 * u[3],
        band_hz=float(400.0 * 2 ** (3.0 * u[4])),
        band_gain_db=9.0 + 6.0 * u[1],
        tilt_db_per_octave=-10.0 + 7.0 * u[5],
        noise_fraction=0.05 + 0.5 * u[6],
    )


def speaker_profile(rng: np.random.Generator) -> SpeakerProfile:
    """Draw a speaker: base f0 90–260 Hz (log-uniform), formants tied loosely to f0."""
    f0 = float(np.exp(rng.uniform(np.log(90.0), np.log(260.0))))
    scale = 0.9 + 0.25 * (np.log(f0 / 90.0) / np.log(260.0 / 90.0)) + rng.normal(0.0, 0.04)
    tone = rng.uniform(0.0, 1.0)
    skin = np.array([105, 65, 45]) + tone * np.array([140, 140, 135]) + rng.normal(0.0, 8.0, 3)
    skin = np.clip(skin, 0, 255).astype(int)
    return SpeakerProfile(
        f0=f0,
        formant_scale=float(np.clip(scale, 0.82, 1.22)),
        loudness_db=float(rng.uniform(-6.0, 3.0)),
        rate_scale=float(rng.uniform(0.8, 1.2)),
        tilt_offset=float(rng.uniform(-2.5, 2.5)),
        breathiness=float(rng.uniform(-0.1, 0.1)),
        quirk_hz=float(np.exp(rng.uniform(np.log(300.0), np.log(4000.0)))),
        quirk_db=float(rng.uniform(0.0, 8.0)),
        skin=(int(skin[0]), int(skin[1]), int(skin[2])),
    )


def _contour_semitones(profile: ClassProfile, u: np.ndarray, t: np.ndarray, depth: float) -> np.ndarray:
    """The class's f0 contour over the utterance, u in [0,1] the relative position."""
    if profile.contour == "rise":
        return depth * (u - 0.5)
    if profile.contour == "fall":
        return depth * (0.5 - u)
    if profile.contour == "vibrato":
        return 0.5 * depth * np.sin(2 * np.pi * 5.5 * t)
    if profile.contour == "arch":
        return depth * (np.sin(np.pi * u) - 0.5)
    return np.zeros_like(u)


def _fft_size(n: int) -> int:
    """The smallest 2^a·3^b·5^c ≥ n: FFTs of clip-length (often prime) sizes are 10× slower."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            size = p35
            while size < n:
                size *= 2
            best = min(best, size)
            p35 *= 3
        p5 *= 5
    return best


def _gaussian_spectrum(rng: np.random.Generator, size: int) -> np.ndarray:
    """The rfft of white noise of length `size`, drawn directly: saves one FFT per noise."""
    bins = size // 2 + 1
    return (rng.standard_normal(bins) + 1j * rng.standard_normal(bins)) / np.sqrt(2.0)


def _drift(rng: np.random.Generator, n: int, sample_rate: int, knot_seconds: float = 0.15) -> np.ndarray:
    """Slow unit-scale wander (piecewise linear between random knots), for natural f0."""
    knots = int(np.ceil(n / (knot_seconds * sample_rate))) + 2
    return np.interp(np.arange(n) / (knot_seconds * sample_rate), np.arange(knots), rng.standard_normal(knots))


def _bump_db(freqs: np.ndarray, centre_hz: float, width_octaves: float) -> np.ndarray:
    """A resonance: a Gaussian in log-frequency, peak 1."""
    return np.exp(-0.5 * (np.log2(np.maximum(freqs, 20.0) / centre_hz) / width_octaves) ** 2)


def _spectral_envelope(
    freqs: np.ndarray,
    rng: np.random.Generator,
    *,
    formant_scale: float,
    tilt: float,
    bands: tuple[tuple[float, float], ...],
) -> np.ndarray:
    """Linear gain per frequency: formants, tilt above 500 Hz and (centre Hz, dB) bands."""
    octaves = np.log2(np.maximum(freqs, 20.0) / 500.0)
    db = np.where(octaves > 0, tilt * octaves, 0.0)
    for centre, width in ((550.0, 0.35), (1600.0, 0.3), (2700.0, 0.25)):
        db = db + 12.0 * _bump_db(freqs, centre * formant_scale * rng.uniform(0.92, 1.08), width)
    for centre, gain in bands:
        db = db + gain * _bump_db(freqs, centre, 0.3)
    return 10.0 ** (db / 20.0)


def speech_like(
    rng: np.random.Generator,
    *,
    sample_rate: int,
    seconds: float,
    profile: ClassProfile,
    speaker: SpeakerProfile,
    intensity: float = 1.0,
    rhythm_seed: int = 0,
    snr_db: tuple[float, float] = (10.0, 30.0),
    gain_db: tuple[float, float] = (-4.0, 2.0),
) -> np.ndarray:
    """A float32 clip in [-1, 1]: a voiced/breathy source with the class's cues, silence-padded.

    Every cue is jittered per clip and shifted by the speaker's habits, so classes overlap a
    little in each cue and separate only jointly. `intensity` (0..1) scales how strongly the
    cues are expressed (CREMA-D's LO/MD/HI); `rhythm_seed` fixes the pauses of one
    "sentence", independent of the class.
    """
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    onset = int(rng.uniform(0.05, 0.25) * sample_rate)
    offset = n - int(rng.uniform(0.05, 0.2) * sample_rate)
    idx = np.arange(n)
    active = np.clip(np.minimum(idx - onset, offset - idx) / (0.03 * sample_rate) + 0.5, 0.0, 1.0)
    u = np.clip((idx - onset) / max(offset - onset, 1), 0.0, 1.0)

    depth = profile.contour_depth * (0.5 + 0.5 * intensity) * rng.uniform(0.7, 1.2)
    semis = _contour_semitones(profile, u, t, depth) + 0.6 * _drift(rng, n, sample_rate)
    f0_t = speaker.f0 * profile.f0_scale * rng.uniform(0.93, 1.07) * 2.0 ** (semis / 12.0)
    size = _fft_size(n)
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    voiced = _glottal_spectrum(f0_t, freqs, size, sample_rate)
    mix = float(np.clip(profile.noise_fraction + speaker.breathiness + rng.uniform(-0.05, 0.05), 0.02, 0.8))
    source = np.sqrt(1.0 - mix) * voiced + np.sqrt(mix) * _gaussian_spectrum(rng, size)
    band = profile.band_hz * speaker.formant_scale * rng.uniform(0.88, 1.12)
    envelope_f = _spectral_envelope(
        freqs,
        rng,
        formant_scale=speaker.formant_scale,
        tilt=profile.tilt_db_per_octave + speaker.tilt_offset + rng.normal(0.0, 0.7),
        bands=(
            (band, profile.band_gain_db * intensity * rng.uniform(0.6, 1.0)),
            (speaker.quirk_hz * rng.uniform(0.95, 1.05), speaker.quirk_db),
        ),
    )
    shaped = np.fft.irfft(source * envelope_f, size)[:n]

    rate = profile.am_rate * speaker.rate_scale * rng.uniform(0.9, 1.1)
    am_depth = float(np.clip(profile.am_depth * (0.6 + 0.4 * intensity) + rng.uniform(-0.1, 0.1), 0.1, 0.95))
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
    envelope = (1.0 - am_depth) + am_depth * syllables**1.5
    envelope = envelope * _pauses(rhythm_seed, u, n) * active
    speech = shaped * envelope
    speech = speech / (np.sqrt(np.mean(speech[onset:offset] ** 2)) + 1e-9)

    noise = _coloured_noise(rng, n, sample_rate)
    snr = rng.uniform(*snr_db)
    clip = speech + noise * 10.0 ** (-snr / 20.0)
    level_db = -20.0 + speaker.loudness_db + rng.uniform(*gain_db)
    clip = clip * 10.0 ** (level_db / 20.0) / (np.sqrt(np.mean(clip**2)) + 1e-9)
    peak = np.abs(clip).max()
    if peak > 0.99:
        clip = clip * (0.99 / peak)
    return clip.astype(np.float32)


def _glottal_spectrum(f0_t: np.ndarray, freqs: np.ndarray, size: int, sample_rate: int) -> np.ndarray:
    """Spectrum (unit mean power) of harmonics of f0_t up to 7 kHz falling as 1/h, unaliased.

    The flat pulse train sum_h cos(h·phase) has the closed form of the Dirichlet kernel, so
    its cost does not grow with the number of harmonics; the 1/h slope is a spectral weight.
    """
    phase = 2 * np.pi * np.cumsum(f0_t) / sample_rate
    count = max(int(min(0.45 * sample_rate, 7000.0) / f0_t.max()), 1)
    half = np.sin(0.5 * phase)
    near_pulse = np.abs(half) < 1e-6
    pulses = np.where(
        near_pulse, float(count), np.sin((count + 0.5) * phase) / np.where(near_pulse, 1.0, 2 * half) - 0.5
    )
    f0_mean = float(f0_t.mean())
    spec = np.fft.rfft(pulses, size) * (f0_mean / np.maximum(freqs, f0_mean))
    return spec / (np.sqrt(np.mean(np.abs(spec) ** 2)) + 1e-12)


def _pauses(rhythm_seed: int, u: np.ndarray, n: int) -> np.ndarray:
    """1–3 short dips at fixed relative positions: the 'words' of one sentence."""
    rng = np.random.default_rng([_PROFILE_SEED, 7, rhythm_seed])
    gate = np.ones(n)
    for centre in np.sort(rng.uniform(0.2, 0.8, size=rng.integers(1, 4))):
        width = rng.uniform(0.015, 0.04)
        gate = gate * (1.0 - 0.85 * np.exp(-0.5 * ((u - centre) / width) ** 2))
    return gate


def _coloured_noise(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Unit-RMS background noise with a random spectral slope (white to pink-ish)."""
    slope = rng.uniform(0.0, 0.5)
    size = _fft_size(n)
    gain = np.maximum(np.fft.rfftfreq(size, 1.0 / sample_rate), 50.0) ** -slope
    out = np.fft.irfft(_gaussian_spectrum(rng, size) * gain, size)[:n]
    return out / (np.sqrt(np.mean(out**2)) + 1e-9)


# ---------------------------------------------------------------------------- video


def frame_envelope(wave: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    """RMS of the audio around each video frame, scaled to 0..1: how open the mouth is."""
    hop = sample_rate / fps
    rms = np.zeros(n_frames)
    for i in range(n_frames):
        chunk = wave[int(i * hop) : int((i + 1) * hop)]
        rms[i] = np.sqrt(np.mean(chunk**2)) if len(chunk) else 0.0
    return np.clip(rms / (rms.max() + 1e-9), 0.0, 1.0)


@dataclass(frozen=True)
class Talker:
    """A speaker saying a clip of one class: the voice and the face share the class's cues."""

    profile: ClassProfile
    speaker: SpeakerProfile
    n_classes: int

    @classmethod
    def of(cls, label: int, n_classes: int, speaker: SpeakerProfile) -> Talker:
        return cls(class_profile(label, n_classes), speaker, n_classes)

    def speech(self, rng: np.random.Generator, *, sample_rate: int, seconds: float, **voice) -> np.ndarray:
        """speech_like with this talker's profiles; `voice`: intensity, rhythm_seed."""
        return speech_like(
            rng, sample_rate=sample_rate, seconds=seconds, profile=self.profile, speaker=self.speaker, **voice
        )

    def face(
        self, rng: np.random.Generator, wave: np.ndarray, *, sample_rate: int, fps: float, size: int
    ) -> np.ndarray:
        """face_frames of this talker speaking `wave`."""
        return face_frames(
            rng,
            wave,
            sample_rate=sample_rate,
            profile=self.profile,
            n_classes=self.n_classes,
            skin=self.speaker.skin,
            fps=fps,
            size=size,
        )


def face_frames(
    rng: np.random.Generator,
    wave: np.ndarray,
    *,
    sample_rate: int,
    profile: ClassProfile,
    n_classes: int,
    skin: tuple[int, int, int],
    fps: float = 15.0,
    size: int = 64,
) -> np.ndarray:
    """uint8 frames (T, size, size, 3) of a cartoon face that speaks the audio.

    The mouth opening follows the audio envelope (so audio and video agree); brow slant,
    mouth curvature and cheek tint depend on the class (jittered per clip, so neighbouring
    classes overlap in each); skin, background and face placement on the speaker and clip.
    """
    n_frames = max(int(np.ceil(len(wave) / sample_rate * fps)), 1)
    openness = frame_envelope(wave, sample_rate, fps, n_frames)
    order = np.random.default_rng([_PROFILE_SEED, n_classes, 99])
    span = max(n_classes - 1, 1)
    slant = -0.5 + float(order.permutation(n_classes)[profile.index]) / span + rng.uniform(-0.12, 0.12)
    smile = -1.0 + 2.0 * float(order.permutation(n_classes)[profile.index]) / span + rng.uniform(-0.25, 0.25)

    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    cx, cy = 0.5 + rng.uniform(-0.04, 0.04), 0.52 + rng.uniform(-0.04, 0.04)
    base = np.empty((size, size, 3), np.float32)
    base[:] = rng.uniform(20, 80, size=3)
    face = ((x - cx) / 0.36) ** 2 + ((y - cy) / 0.44) ** 2 <= 1.0
    base[face] = skin
    tint = 60.0 * (0.5 + 0.5 * smile)
    for side in (-1, 1):
        cheek = ((x - cx - side * 0.2) ** 2 + (y - cy - 0.08) ** 2) <= 0.07**2
        base[cheek] = np.clip(np.array(skin, np.float32) + [tint, -tint / 3, -tint / 3], 0, 255)
        eye = ((x - cx - side * 0.13) ** 2 + (y - cy + 0.1) ** 2) <= 0.045**2
        base[eye] = (30, 30, 40)
        dx = x - cx - side * 0.13
        brow_y = cy - 0.2 + side * slant * dx * 1.2
        brow = (np.abs(dx) <= 0.08) & (np.abs(y - brow_y) <= 0.018)
        base[brow] = (40, 25, 20)

    frames = np.repeat(base[None], n_frames, axis=0)
    mx = x - cx
    curve = cy + 0.22 - smile * 0.08 * (mx / 0.12) ** 2
    half_height = 0.012 + 0.09 * openness
    inside = (np.abs(mx) <= 0.12)[None] & (
        np.abs(y[None] - curve[None]) <= half_height[:, None, None] * (1 - (mx[None] / 0.12) ** 2)
    )
    frames[inside] = (90, 20, 30)
    return np.clip(frames, 0, 255).astype(np.uint8)
