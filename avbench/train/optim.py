"""Optimizers by name: adam, adamw, sgd, lion."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from avbench.config import TrainConfig


def model_param_groups(model: torch.nn.Module, lr: float) -> Iterable:
    """What the optimizer trains: a model with its own learning rates (e.g. wav2vec2-fn's
    base_lr / conv_lr) says so with a `param_groups(lr)` method; the others train every
    parameter at `lr`."""
    return model.param_groups(lr) if hasattr(model, "param_groups") else model.parameters()


def build_optimizer(params: Iterable, cfg: TrainConfig) -> torch.optim.Optimizer:
    """`params` may be tensors or parameter groups (dicts with their own 'lr')."""
    params = [p for p in params if not isinstance(p, torch.Tensor) or p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "lion":
        from lion_pytorch import Lion

        return Lion(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer '{cfg.optimizer}'")


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """Stepped once per optimizer step (not per batch), so gradient accumulation and
    data-parallel runs see the same schedule."""
    if cfg.scheduler == "none":
        return None
    import math

    total = max(steps_per_epoch * cfg.epochs, 1)
    warmup = min(steps_per_epoch, total // 2)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
