"""SpecAugment on spectrogram images [B, ..., freq, time] (Park et al. 2019): time warp, then
frequency and time masks, each example with its own draws. A masked band takes the example's
mean, so a standardised log-mel stays standardised."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from avbench.config_augment import AugmentConfig


def _masks(count: int, masks: int, widest: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """[count, size] booleans: `masks` bands per example, each of a width in [0, widest]."""
    covered = torch.zeros(count, size, dtype=torch.bool)
    positions = torch.arange(size)
    for _ in range(masks):
        width = torch.randint(0, min(widest, size) + 1, (count, 1), generator=generator)
        start = (torch.rand((count, 1), generator=generator) * (size - width + 1)).long()
        covered |= (positions >= start) & (positions < start + width)
    return covered


def time_warp(image: torch.Tensor, widest: int, generator: torch.Generator) -> torch.Tensor:
    """Each example's time axis stretched on one side of a random point and squeezed on the
    other, by up to `widest` frames; the length is kept."""
    frames = image.shape[-1]
    if frames <= 2 * widest + 1:
        return image
    out = []
    for example in image:
        centre = int(torch.randint(widest + 1, frames - widest, (), generator=generator))
        moved = centre + int(torch.randint(-widest, widest + 1, (), generator=generator))
        flat = example.reshape(1, -1, frames)
        left = F.interpolate(flat[..., :centre], size=moved, mode="linear", align_corners=False)
        right = F.interpolate(flat[..., centre:], size=frames - moved, mode="linear", align_corners=False)
        out.append(torch.cat([left, right], dim=-1).reshape(example.shape))
    return torch.stack(out)


def augment_spectrogram(image: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Time warp, frequency masks, time masks (those that are on); shape and dtype kept."""
    shape = image.shape
    flat = image.reshape(shape[0], -1, shape[-2], shape[-1])
    if cfg.time_warp:
        flat = time_warp(flat, cfg.time_warp, generator)
    count, _, bins, frames = flat.shape
    covered = torch.zeros(count, bins, frames, dtype=torch.bool)
    if cfg.freq_masks:
        covered |= _masks(count, cfg.freq_masks, cfg.freq_mask_width, bins, generator)[:, :, None]
    if cfg.time_masks:
        covered |= _masks(count, cfg.time_masks, cfg.time_mask_width, frames, generator)[:, None, :]
    if covered.any():
        fill = flat.mean(dim=(1, 2, 3), keepdim=True)
        flat = torch.where(covered[:, None].to(flat.device), fill, flat)
    return flat.reshape(shape)
