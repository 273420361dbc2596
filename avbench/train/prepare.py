"""Accelerate's `prepare` and `unwrap_model` in a run of one process, without asking what only
other set-ups can have.

To decide where the model goes, `prepare` imports torch.distributed.tensor and asks whether its
parameters are DTensors; `unwrap_model` imports torch._dynamo (Accelerate's
`hasattr(torch, "_dynamo")` loads it) and FSDP to ask whether the model is compiled or sharded.
That is about 2.3 s of CPU per process, where a tiny trial trains in a fraction of a second. In
one process (no DDP, FSDP, DeepSpeed or tensor parallelism) the answers are known: no DTensors,
no sharding, and a compiled model would already have imported torch._dynamo.
"""

from __future__ import annotations

import sys

import torch
from accelerate.utils import DistributedType


def one_process(accelerator) -> bool:
    return accelerator.distributed_type == DistributedType.NO


def prepare(accelerator, *objects) -> tuple:
    """accelerator.prepare(*objects); in one process every object is placed as the
    Accelerator's own default says, as Accelerate would decide for a model without DTensors."""
    if not one_process(accelerator):
        return accelerator.prepare(*objects)
    return accelerator.prepare(*objects, device_placement=[accelerator.device_placement] * len(objects))


def unwrap(accelerator, model: torch.nn.Module) -> torch.nn.Module:
    """The module itself, not its torch.compile or parallel wrapper (checkpoints keep plain
    parameter names)."""
    if one_process(accelerator) and "torch._dynamo" not in sys.modules:
        return model  # neither compiled nor wrapped for parallel training
    return accelerator.unwrap_model(model, keep_torch_compile=False)
