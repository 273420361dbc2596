"""The fast path on a GPU, settled once per run: precision, loader workers, pinned memory,
TF32 matmuls and torch.compile. Each `auto` resolves from the device the run trains on, so
the same experiment is fp32 and single-process on a CPU and bf16 with fed loaders on a GPU.
On CPU nothing here changes a number: the CPU path is what the tests pin down."""

from __future__ import annotations

from typing import Any

from avbench.threads import usable_cores

MAX_AUTO_LOADER_WORKERS = 8  # past this, decoding cached arrays is never the bottleneck


def resolve_precision(asked: str, *, device_type: str, bf16_supported: bool) -> str:
    """`train.mixed_precision` as Accelerate takes it: `auto` is bf16 on a GPU that has it,
    fp16 (with Accelerate's GradScaler) on one that does not, and no (fp32) on CPU, where
    autocast is slower than fp32 for these models; an explicit value is kept."""
    if asked != "auto":
        return asked
    if device_type != "cuda":
        return "no"
    return "bf16" if bf16_supported else "fp16"


def cuda_precision_support() -> tuple[str, bool]:
    """(the device type a run will train on, whether it does bf16)."""
    import torch

    if not torch.cuda.is_available():
        return "cpu", False
    return "cuda", torch.cuda.is_bf16_supported()


def resolve_num_workers(asked: int | str, *, device_type: str, processes: int = 1, cores: int | None = None) -> int:
    """`train.num_workers`: `auto` is 0 on CPU (the cores train; the cached arrays need no
    decoding) and, on a GPU, this process's share of the cores less one for the training
    loop itself, at most MAX_AUTO_LOADER_WORKERS."""
    if asked != "auto":
        return int(asked)
    if device_type != "cuda":
        return 0
    share = (cores or usable_cores()) // max(1, processes)
    return max(0, min(MAX_AUTO_LOADER_WORKERS, share - 1))


def loader_options(asked: int | str, *, device_type: str, processes: int = 1) -> dict[str, Any]:
    """DataLoader keywords: workers kept alive across epochs when there are any, and pinned
    host memory on a GPU so each batch's copy can run asynchronously (non_blocking)."""
    workers = resolve_num_workers(asked, device_type=device_type, processes=processes)
    return {"num_workers": workers, "persistent_workers": workers > 0, "pin_memory": device_type == "cuda"}


def enable_tf32() -> None:
    """TF32 tensor-core matmuls and convolutions on Ampere and later (about 8x fp32's rate at
    a 10-bit mantissa, as PyTorch's own default for convolutions). CPU numbers are untouched."""
    import torch

    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")
