"""A baseline every leaderboard needs: per-band mean and std of the log-mel over time, then
an MLP. Like the classic MFCC-statistics baselines (ESC-50's random forest, HEAR's linear
probes), it shows how much a deep model adds over summary statistics, and it trains in
seconds on a CPU."""

from __future__ import annotations

import torch
from torch import nn

from avbench.models._heads import classifier
from avbench.registry import register_model
from avbench.spec import TaskSpec


class MelStatsMLP(nn.Module):
    def __init__(self, n_mels: int, spec: TaskSpec, hidden: int, layers: int, dropout: float):
        super().__init__()
        blocks: list[nn.Module] = []
        width = 2 * n_mels
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        blocks.append(classifier(width, spec))
        self.head = nn.Sequential(nn.LayerNorm(2 * n_mels), *blocks)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        mel = batch["audio"].flatten(1, -2)  # [B, channels * mels, frames]
        stats = torch.cat([mel.mean(dim=-1), mel.std(dim=-1)], dim=-1)
        return self.head(stats)


@register_model(
    "mel-stats-mlp",
    tiny={"hidden": 16, "layers": 1},
    modalities=("audio",),
    defaults={"train": {"epochs": 30, "optimizer": "adamw", "scheduler": "cosine", "patience": 5}},
    search={"model_args.dropout": {"min": 0.0, "max": 0.5}},
    presets={"cpu": {}},  # trains in seconds at full size
)
def mel_stats_mlp(spec: TaskSpec, hidden: int = 256, layers: int = 2, dropout: float = 0.1) -> nn.Module:
    channels, n_mels, _ = spec.shapes["audio"]
    return MelStatsMLP(channels * n_mels, spec, hidden, layers, dropout)
