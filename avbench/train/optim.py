"""Optimizers by name: adam, adamw, sgd, lion."""

from __future__ import annotations

import functools
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
        return eager(torch.optim.Adam)(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return eager(torch.optim.AdamW)(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return eager(torch.optim.SGD)(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "lion":
        from lion_pytorch import Lion

        return eager(Lion)(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer '{cfg.optimizer}'")


# torch wraps these optimizer methods so that torch.compile does not trace them; each wrapper
# imports torch._dynamo when first called (about 2.5 s of CPU per process, more than the rest of
# a tiny trial), and step's imports it on every call to place graph breaks.
DYNAMO_WRAPPERS = ("_disable_dynamo.<locals>.inner", "_use_grad_for_differentiable.<locals>._use_grad")
WRAPPED_METHODS = ("add_param_group", "zero_grad", "state_dict", "load_state_dict", "step")


@functools.cache
def eager(optimizer_class: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """`optimizer_class` with its methods as written, without torch's dynamo wrappers. Nothing
    here compiles an optimizer (Accelerate compiles the model only), so in eager mode those
    wrappers only import torch._dynamo; the one other thing step's does, autograd off unless
    the optimizer is differentiable, is kept."""
    methods = {}
    for name in WRAPPED_METHODS:
        method = getattr(optimizer_class, name)
        if getattr(method.__code__, "co_qualname", "") in DYNAMO_WRAPPERS:
            methods[name] = method.__wrapped__
    if "step" in methods:
        methods["step"] = without_grad_unless_differentiable(methods["step"])
    return type(optimizer_class.__name__, (optimizer_class,), methods)


def without_grad_unless_differentiable(step):
    @functools.wraps(step)
    def eager_step(self, *args, **kwargs):
        with torch.set_grad_enabled(self.defaults.get("differentiable", False)):
            return step(self, *args, **kwargs)

    return eager_step


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
