"""Mixup and cutmix across the examples of a batch (Zhang et al. 2018; Yun et al. 2019).

Labels are never changed: the batch gains "mix_label" (the partner of each example, a
permutation of "label") and "mix_lambda" (the share of the example's own label), and the loss
is mix_lambda · CE(label) + (1 − mix_lambda) · CE(mix_label) (avbench.train.heads). Mixup blends
every modality with one weight; cutmix pastes the partner's span of the same relative time
into every modality (audio's last axis, video's frame axis), and its weight is the share kept.
"""

from __future__ import annotations

import numpy as np
import torch

from avbench.config_augment import AugmentConfig

MIXED = ("audio", "video")


def beta(alpha: float, generator: torch.Generator) -> float:
    """A Beta(α, α) draw, from a numpy generator seeded by the torch one (torch's Beta takes no generator)."""
    seed = int(torch.randint(2**31 - 1, (), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def _time_axis(modality: str, tensor: torch.Tensor) -> int:
    """Video [B, (S,) T, 3, H, W]: frames are the axis before the channels; audio: the last axis."""
    return tensor.dim() - 4 if modality == "video" else tensor.dim() - 1


def mixup(batch: dict, alpha: float, order: torch.Tensor, generator: torch.Generator) -> float:
    weight = beta(alpha, generator)
    for name in MIXED:
        if name in batch:
            batch[name] = weight * batch[name] + (1.0 - weight) * batch[name][order]
    return weight


def cutmix(batch: dict, alpha: float, order: torch.Tensor, generator: torch.Generator) -> float:
    share = 1.0 - beta(alpha, generator)
    start_at = float(torch.rand((), generator=generator)) * (1.0 - share)
    kept = 1.0
    for name in MIXED:
        if name not in batch:
            continue
        tensor = batch[name]
        axis = _time_axis(name, tensor)
        length = tensor.shape[axis]
        start, cut = int(start_at * length), int(round(share * length))
        span = (slice(None),) * axis + (slice(start, start + cut),)
        pasted = tensor.clone()
        pasted[span] = tensor[order][span]
        batch[name] = pasted
        kept = 1.0 - cut / length  # the share actually kept, after rounding to whole samples/frames
    return kept


def mix_batch(batch: dict, cfg: AugmentConfig, generator: torch.Generator) -> dict:
    """Mixup or cutmix (one of them per batch, evenly, when both are on); labels untouched."""
    count = len(batch["label"])
    if count < 2:
        return batch
    use_cutmix = cfg.cutmix_alpha > 0 and (cfg.mixup_alpha == 0 or bool(torch.rand((), generator=generator) < 0.5))
    order = torch.randperm(count, generator=generator).to(batch["label"].device)
    mixed = dict(batch)
    if use_cutmix:
        weight = cutmix(mixed, cfg.cutmix_alpha, order, generator)
    else:
        weight = mixup(mixed, cfg.mixup_alpha, order, generator)
    mixed["mix_label"] = batch["label"][order]
    mixed["mix_lambda"] = torch.tensor(weight, device=batch["label"].device)
    return mixed
