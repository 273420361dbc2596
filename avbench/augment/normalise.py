"""Normalisation of the audio features, on every split: per clip (CMVN: each frequency bin, or
the waveform, to zero mean and unit variance over the clip's time), or with statistics of the
training split (per bin), computed once and cached in a file whose name is a hash of what they
depend on (avbench.results.layout.normalisation_stats)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from avbench.results.records import write_bytes_atomic

EPSILON = 1e-5


def clip_cmvn(audio: torch.Tensor) -> torch.Tensor:
    """Per example (and per bin of a spectrogram image): zero mean, unit variance over time."""
    mean = audio.mean(dim=-1, keepdim=True)
    std = audio.std(dim=-1, keepdim=True)
    return (audio - mean) / (std + EPSILON)


def dataset_statistics(batches: Iterable[torch.Tensor], image: bool) -> dict[str, torch.Tensor]:
    """Mean and std over the training split: per frequency bin of spectrogram images
    [B, ..., bins, frames], one of each for waveforms [B, ..., samples]."""
    total, squares, count = 0.0, 0.0, 0
    for audio in batches:
        audio = audio.double()
        values = audio.transpose(-2, -1).reshape(-1, audio.shape[-2]) if image else audio.reshape(-1, 1)
        total = total + values.sum(0)
        squares = squares + values.pow(2).sum(0)
        count += values.shape[0]
    mean = total / count
    std = (squares / count - mean.pow(2)).clamp_min(0).sqrt()
    return {"mean": mean.float(), "std": std.float()}


def apply_statistics(audio: torch.Tensor, stats: dict[str, torch.Tensor], image: bool) -> torch.Tensor:
    mean, std = (stats[k].to(audio.device, audio.dtype) for k in ("mean", "std"))
    if image:
        mean, std = mean[:, None], std[:, None]
    return (audio - mean) / (std + EPSILON)


def cached_statistics(path: Path, compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The statistics in `path`, or computed and written there (atomically) when absent or unreadable."""
    try:
        stats = torch.load(path, weights_only=True)
        if set(stats) == {"mean", "std"}:
            return stats
    except (OSError, RuntimeError, EOFError, ValueError):
        pass
    stats = compute()
    write_bytes_atomic(path, lambda handle: torch.save(stats, handle), durable=False)
    return stats
