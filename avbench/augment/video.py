"""OpenAV's video augmentation on normalised frames [B, (S,) T, 3, H, W]: random crop (resized
back), horizontal flip, rotation and scale as one affine warp per clip (every frame of a clip
moves the same way, as a head would), then contrast/brightness jitter and Gaussian blur."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from avbench.config_augment import AugmentConfig


def _affine(cfg: AugmentConfig, count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """[count, 2, 3] maps from output to input coordinates (affine_grid's convention)."""
    rand = lambda: torch.rand(count, generator=generator)  # noqa: E731
    angle = (2 * rand() - 1) * math.radians(cfg.video_rotate_deg)
    scale = cfg.video_scale_min + (cfg.video_scale_max - cfg.video_scale_min) * rand()
    crop = torch.floor(rand() * (min(cfg.video_crop_px, size - 1) + 1))
    keep = (size - crop) / size  # the crop's side as a share of the frame
    # The crop's centre in [-1, 1]: its top-left corner lies anywhere in [0, crop] pixels.
    centre_x = 2 * (rand() * crop + (size - crop) / 2) / size - 1
    centre_y = 2 * (rand() * crop + (size - crop) / 2) / size - 1
    flip = torch.where(rand() < cfg.video_flip, -1.0, 1.0)
    zoom = keep / scale
    cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
    return torch.stack([torch.stack([cos * flip, -sin, centre_x], 1), torch.stack([sin * flip, cos, centre_y], 1)], 1)


def _blur(frames: torch.Tensor) -> torch.Tensor:
    """A 5×5 Gaussian (σ 1) on every channel."""
    taps = torch.exp(-0.5 * torch.arange(-2.0, 3.0) ** 2)
    kernel = (taps[:, None] * taps[None, :]) / taps.sum() ** 2
    kernel = kernel.to(frames.device, frames.dtype).expand(frames.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(frames, (2, 2, 2, 2), mode="replicate"), kernel, groups=frames.shape[1])


def augment_video(video: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """The OpenAV transforms that are on; shape and dtype kept."""
    shape = video.shape
    count, height, width = shape[0], shape[-2], shape[-1]
    frames = video.reshape(count, -1, 3, height, width).float()
    per_clip = frames.shape[1]
    flat = frames.reshape(-1, 3, height, width)
    theta = _affine(cfg, count, min(height, width), generator).to(video.device)
    grid = F.affine_grid(theta.repeat_interleave(per_clip, 0), list(flat.shape), align_corners=False)
    flat = F.grid_sample(flat, grid, mode="bilinear", padding_mode="border", align_corners=False)
    frames = flat.reshape(count, per_clip, 3, height, width)
    if cfg.video_color:
        contrast = 1 + cfg.video_color * (2 * torch.rand(count, 1, 1, 1, 1, generator=generator) - 1)
        brightness = cfg.video_color * (2 * torch.rand(count, 1, 1, 1, 1, generator=generator) - 1)
        mean = frames.mean(dim=(1, 2, 3, 4), keepdim=True)
        frames = (frames - mean) * contrast.to(video.device) + mean + brightness.to(video.device)
    if cfg.video_blur_p:
        blurred = _blur(frames.reshape(-1, 3, height, width)).reshape(frames.shape)
        chosen = (torch.rand(count, 1, 1, 1, 1, generator=generator) < cfg.video_blur_p).to(video.device)
        frames = torch.where(chosen, blurred, frames)
    return frames.reshape(shape).to(video.dtype)
