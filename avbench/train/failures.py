"""How a trial fails: out of memory (retried with a smaller micro-batch) or anything else,
described in one line for the run record."""

from __future__ import annotations

from avbench.config import TrainConfig
from avbench.errors import describe_os_error


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's OutOfMemoryError (CUDA, and what newer backends raise), or the RuntimeError
    that CPU and MPS allocators raise with the words in the message."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def smaller_micro_batch(cfg: TrainConfig) -> TrainConfig | None:
    if cfg.batch_size < 2:
        return None
    return cfg.model_copy(update={"batch_size": cfg.batch_size // 2, "grad_accum": cfg.grad_accum * 2})


def empty_device_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return describe_os_error(exc)  # "no space left on device: results/runs/…/best.pt"
    if is_out_of_memory(exc):
        lines = str(exc).strip().splitlines()
        return "out of memory: " + (lines[0] if lines else type(exc).__name__)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
