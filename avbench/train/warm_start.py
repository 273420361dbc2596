"""Warm start (`train.init_from`): a model starts from a checkpoint's weights and nothing else
(no optimizer, no epoch), as emotions-classify's start_from_saved_checkpoint_path.

The file may be a run's best.pt / last.pt, a Lightning checkpoint ({"state_dict": …}) or a
plain state dict. Every key must match the model in name and shape, except those starting
with an entry of `train.init_skip_keys` (e.g. a classifier trained for other classes); a
mismatch is one line naming the file and the first differing keys, before anything trains.
"""

from __future__ import annotations

from pathlib import Path

import torch

from avbench.config import TrainConfig
from avbench.errors import ConfigError

SHOWN = 3  # keys named per kind of mismatch


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint file, loaded as data only (weights_only)."""
    if not path.is_file():
        raise ConfigError(f"train.init_from: {path} not found")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, or holding code objects
        raise ConfigError(
            f"train.init_from: {path} is not a readable PyTorch checkpoint ({type(exc).__name__})"
        ) from None
    for key in ("model", "state_dict"):
        if isinstance(saved, dict) and isinstance(saved.get(key), dict):
            saved = saved[key]
    if not isinstance(saved, dict) or not all(isinstance(v, torch.Tensor) for v in saved.values()):
        raise ConfigError(f"train.init_from: {path} holds no state dict of tensors")
    return saved


def _mismatches(own: dict[str, torch.Tensor], saved: dict[str, torch.Tensor], skipped) -> list[str]:
    """What keeps the checkpoint from loading strictly: missing, unexpected and reshaped keys."""
    problems = []
    missing = [k for k in own if k not in saved and not skipped(k)]
    unexpected = [k for k in saved if k not in own and not skipped(k)]
    reshaped = [
        f"{k} {tuple(saved[k].shape)} ≠ model {tuple(own[k].shape)}"
        for k in own
        if k in saved and not skipped(k) and saved[k].shape != own[k].shape
    ]
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", reshaped)):
        if keys:
            more = f" (+{len(keys) - SHOWN} more)" if len(keys) > SHOWN else ""
            problems.append(f"{label}: {', '.join(keys[:SHOWN])}{more}")
    return problems


def warm_start(model: torch.nn.Module, cfg: TrainConfig) -> int:
    """Load `cfg.init_from` into `model`; returns how many tensors were loaded."""
    path = Path(cfg.init_from)
    saved = read_weights(path)
    own = model.state_dict()

    def skipped(key: str) -> bool:
        return any(key.startswith(prefix) for prefix in cfg.init_skip_keys)

    problems = _mismatches(own, saved, skipped)
    if problems:
        hint = " (skip keys with train.init_skip_keys)" if not cfg.init_skip_keys else ""
        raise ConfigError(f"train.init_from: {path} does not match the model: {'; '.join(problems)}{hint}")
    kept = {k: v for k, v in saved.items() if not skipped(k)}
    model.load_state_dict(kept, strict=False)
    return len(kept)


def check_warm_start(cfg: TrainConfig, build) -> None:
    """Before the run: the checkpoint loads into a freshly built model (`build()`), or one line."""
    if cfg.init_from is not None:
        warm_start(build(), cfg)
