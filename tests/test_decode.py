"""Audio decoding of every format users have: real files written by soundfile and by FFmpeg
(PyAV), decoded, downmixed and resampled to the experiment's rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avbench.data.audio import load_audio, read_mono
from avbench.data.features import LogMelExtractor, LogMelSettings
from avbench.tasks.cremad import CremaD
from tests.media import gray, tone, write_audio_av, write_video, write_wav

RATE = 16000


def _peak_hz(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


# name → writer(path) of one second of a 440 Hz tone at amplitude 0.5, and the native rate.
WAV_VARIANTS = {
    "wav-8bit": (lambda p: write_wav(p, tone(1, 22050), 22050, "PCM_U8"), 22050),
    "wav-16bit": (lambda p: write_wav(p, tone(1, 16000), 16000, "PCM_16"), 16000),
    "wav-24bit": (lambda p: write_wav(p, tone(1, 44100), 44100, "PCM_24"), 44100),
    "wav-32bit-float": (lambda p: write_wav(p, tone(1, 48000), 48000, "FLOAT"), 48000),
    "wav-11025": (lambda p: write_wav(p, tone(1, 11025), 11025), 11025),
    "flac-48000": (lambda p: write_wav(p.with_suffix(".flac"), tone(1, 48000), 48000, "PCM_16"), 48000),
    "ogg-vorbis": (lambda p: write_wav(p.with_suffix(".ogg"), tone(1, 22050), 22050, "VORBIS", "OGG"), 22050),
    "mp3": (
        lambda p: write_audio_av(p.with_suffix(".mp3"), tone(1, 22050), 22050, container_format="mp3", codec="mp3"),
        22050,
    ),
    "m4a-aac": (
        lambda p: write_audio_av(p.with_suffix(".m4a"), tone(1, 44100), 44100, container_format="ipod", codec="aac"),
        44100,
    ),
    "webm-opus": (
        lambda p: write_audio_av(
            p.with_suffix(".webm"), tone(1, 16000), 16000, container_format="webm", codec="libopus", stream_rate=48000
        ),
        48000,
    ),
    "mp4-video-with-aac": (
        lambda p: write_video(
            p.with_suffix(".mp4"), lambda t: gray(128), np.arange(10) / 10, audio=(tone(1, 16000), 16000)
        ),
        16000,
    ),
}


@pytest.mark.parametrize("variant", sorted(WAV_VARIANTS))
def test_every_format_decodes_to_the_same_tone(variant, tmp_path):
    write, native = WAV_VARIANTS[variant]
    path = write(tmp_path / "clip.wav")
    wave, rate = read_mono(path)
    assert rate == native and wave.dtype == np.float32 and wave.ndim == 1
    assert 0.4 < np.abs(wave).max() < 0.6  # scaled to [-1, 1] whatever the sample format
    resampled = load_audio(path, RATE)
    # Lossy codecs add a few ms of priming/padding; the content is the same second of 440 Hz.
    assert abs(len(resampled) / RATE - 1.0) < 0.12
    assert abs(_peak_hz(resampled, RATE) - 440) < 3


def test_stereo_is_averaged_to_mono(tmp_path):
    left, right = tone(1, 44100, amplitude=0.6), tone(1, 44100, freq=1000, amplitude=0.2)
    path = write_wav(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 44100, "PCM_24")
    wave, rate = read_mono(path)
    np.testing.assert_allclose(wave, (left + right) / 2, atol=1e-4)


@pytest.mark.parametrize("rate", [11025, 22050, 44100, 48000])
def test_odd_rates_resample_to_the_configured_rate(rate, tmp_path):
    path = write_wav(tmp_path / f"{rate}.wav", tone(1.5, rate, freq=1000), rate)
    wave = load_audio(path, RATE)
    assert abs(len(wave) - 1.5 * RATE) <= 1  # torchaudio rounds the resampled length up
    assert abs(_peak_hz(wave, RATE) - 1000) < 2
    # The same clip at any rate gives (nearly) the same log-mel features.
    native = write_wav(tmp_path / "native.wav", tone(1.5, RATE, freq=1000), RATE)
    extract = LogMelExtractor(LogMelSettings(sample_rate=RATE, clip_seconds=1.5, n_mels=32))
    assert np.corrcoef(extract(path).ravel().astype(float), extract(native).ravel().astype(float))[0, 1] > 0.97


def test_audio_inside_cremad_flv_matches_its_wav(tmp_path):
    """CREMA-D's VideoFlash/*.flv carries MP3 audio: decoded from the container it is the same
    waveform as AudioWAV/*.wav, up to the MP3 decoder's delay (~50 ms) and coding noise."""
    root = tmp_path / "cremad"
    CremaD().synthesize(root, size=1, seed=0, workers=1)
    wav = sorted((root / "AudioWAV").glob("*.wav"))[0]
    reference, from_flv = load_audio(wav, RATE), load_audio(root / "VideoFlash" / f"{wav.stem}.flv", RATE)
    span = len(reference) - RATE // 10
    best = max(np.corrcoef(reference[:span], from_flv[lag : lag + span])[0, 1] for lag in range(0, RATE // 10, 2))
    assert best > 0.95


def test_a_mislabelled_file_still_decodes(tmp_path):
    """An MP3 saved as .wav: libsndfile rejects it, FFmpeg reads it."""
    mp3 = write_audio_av(tmp_path / "a.mp3", tone(1, 22050), 22050, container_format="mp3", codec="mp3")
    disguised = Path(mp3.rename(tmp_path / "a.wav"))
    wave, rate = read_mono(disguised)
    assert rate == 22050 and abs(_peak_hz(wave, rate) - 440) < 3
