"""EfficientNet (timm) on a one-channel log-mel image (emotions-classify's SpectrogramCnn)."""

from __future__ import annotations

import torch
from torch import nn

from avbench.models._efficientnet import EfficientNetOptions, efficientnet
from avbench.models._options import flat_options
from avbench.registry import register_model
from avbench.spec import TaskSpec


class SpectrogramCNN(nn.Module):
    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.backbone(batch["audio"])


@register_model(
    "spectrogram-cnn",
    tiny={"width": 0.25, "depth": 0.25},
    modalities=("audio",),
    search={"model_args.drop_rate": {"min": 0.0, "max": 0.5}},
    presets={"cpu": {"model_args": {"width": 0.25, "depth": 0.25}}},
)
@flat_options(cnn=EfficientNetOptions)
def spectrogram_cnn(
    spec: TaskSpec,
    cnn: EfficientNetOptions = EfficientNetOptions(),
    pretrained: bool = False,
) -> nn.Module:
    """EfficientNet-B0 by default; `width`/`depth` scale it (see avbench.models._efficientnet)."""
    return SpectrogramCNN(efficientnet(spec, cnn, pretrained=pretrained))
