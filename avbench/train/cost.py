"""What a trained model costs to run, for objectives beside accuracy: latency per clip and the
training's peak memory. Measured after training, on the trial's device."""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable

import torch

LATENCY_REPEATS = 20  # timed forward passes; the median is reported
LATENCY_WARMUP = 3  # untimed passes first (lazy init, allocator, cuDNN autotune)


def first_clip(loader) -> dict:
    """The loader's first item as a batch of one."""
    batch = next(iter(loader))
    return {k: v[:1] if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def latency_ms(
    model: torch.nn.Module,
    batch: dict,
    device: torch.device,
    repeats: int = LATENCY_REPEATS,
    prepare: Callable[[dict], dict] | None = None,
) -> float:
    """Median milliseconds of one forward pass at batch 1 (in eval mode; the mode is restored).
    `prepare` makes the model's input from the batch on the device first, outside the timing."""
    was_training = model.training
    model.eval()
    batch = to_device(batch, device)
    if prepare is not None:
        batch = prepare(batch)
    timings = []
    try:
        for index in range(LATENCY_WARMUP + repeats):
            _sync(device)
            started = time.perf_counter()
            model(batch)
            _sync(device)
            if index >= LATENCY_WARMUP:
                timings.append((time.perf_counter() - started) * 1000)
    finally:
        model.train(was_training)
    return round(statistics.median(timings), 4)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> tuple[float, str]:
    """(MiB, what was measured): CUDA's max allocated since the trial began on a GPU; on CPU the
    process's peak resident set size, which counts everything this process held before too."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1), "cuda max allocated"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kib = peak / 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux
    return round(kib / 1024, 1), "process peak RSS"
