"""A numpy yardstick for the stand-ins: loudness-free log-mel summaries and a multinomial
logistic regression. If this simple model beats chance on held-out speakers (or folds), the
class signal is learnable and does not hide in the speaker; with shuffled training labels it
must fall to chance, so the files leak nothing else."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import soundfile as sf

N_MELS = 64


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples and rate: soundfile for WAV, PyAV for the audio track of a container."""
    if path.suffix.lower() in (".wav", ".flac", ".ogg"):
        wave, rate = sf.read(str(path), dtype="float32", always_2d=True)
        return wave.mean(axis=1), rate
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [frame.to_ndarray().reshape(-1, frame.samples).mean(axis=0) for frame in container.decode(stream)]
        return np.concatenate(chunks).astype(np.float32), stream.codec_context.sample_rate


@functools.lru_cache(maxsize=4)
def mel_filters(sample_rate: int, n_fft: int) -> np.ndarray:
    def to_hz(mel: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)

    top = min(sample_rate / 2, 8000.0)
    points = to_hz(np.linspace(0.0, 2595.0 * np.log10(1.0 + top / 700.0), N_MELS + 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    low, mid, high = points[:-2, None], points[1:-1, None], points[2:, None]
    return np.maximum(0.0, np.minimum((freqs - low) / (mid - low), (high - freqs) / (high - mid)))


def clip_features(path: Path) -> np.ndarray:
    """Loudness-free summaries of a 64-band log-mel (~25 ms / 10 ms, up to 8 kHz): spectral
    shape, per-band variation and change, and the envelope's modulation spectrum up to 12 Hz."""
    wave, rate = read_audio(path)
    # A power-of-two window near 25 ms (512 at 16 kHz, 1024 at 44.1/48 kHz): no padded FFTs.
    n_fft = 1 << round(np.log2(0.025 * rate))
    window, hop = n_fft, int(0.010 * rate)
    frames = np.lib.stride_tricks.sliding_window_view(wave, window)[::hop] * np.hanning(window).astype(np.float32)
    filters = mel_filters(rate, n_fft)
    logmel = np.log(np.abs(np.fft.rfft(frames, n_fft)) ** 2 @ filters.T + 1e-8)
    loudest = logmel.max(axis=1)
    active = logmel[loudest > loudest.max() - 4.5]
    shape = active.mean(axis=0) - active.mean()
    groups = np.arange(0, N_MELS, 4)
    spread = np.add.reduceat(active.std(axis=0), groups)
    change = np.add.reduceat(np.abs(np.diff(active, axis=0)).mean(axis=0), groups) if len(active) > 1 else spread * 0
    envelope = np.log(np.exp(logmel).sum(axis=1) + 1e-8)
    modulation = np.abs(np.fft.rfft(envelope - envelope.mean(), 1024))[:123]
    modulation = np.add.reduceat(modulation, np.arange(0, 123, 5))
    return np.concatenate([shape, spread, change, 20.0 * modulation / (modulation.sum() + 1e-8)])


def logistic_accuracy(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, n_classes: int) -> float:
    """Fit on `train` (features standardised on it), return accuracy on `test`."""
    mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-6
    x = (x - mean) / std
    weights, bias, onehot = np.zeros((x.shape[1], n_classes)), np.zeros(n_classes), np.eye(n_classes)[y[train]]
    for _ in range(500):
        logits = x[train] @ weights + bias
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        grad = (probs - onehot) / train.sum()
        weights -= 0.5 * (x[train].T @ grad + 1e-2 * weights)
        bias -= 0.5 * grad.sum(axis=0)
    return float(((x[test] @ weights + bias).argmax(axis=1) == y[test]).mean())


def grouped_cv_accuracy(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_classes: int, folds: int = 5) -> float:
    """Accuracy over every clip, each predicted by a model that never saw its group (speaker
    or predefined fold): groups are dealt round-robin into `folds` folds."""
    names = sorted(set(groups.tolist()))
    fold_of = {name: i % folds for i, name in enumerate(names)}
    assigned = np.array([fold_of[g] for g in groups.tolist()])
    correct = 0.0
    for fold in range(min(folds, len(names))):
        test = assigned == fold
        correct += logistic_accuracy(x, y, ~test, test, n_classes) * test.sum()
    return correct / len(y)


def shuffled(y: np.ndarray, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(y)
