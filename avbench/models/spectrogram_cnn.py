"""EfficientNet (timm) on a one-channel log-mel image (emotions-classify's SpectrogramCnn)."""

from __future__ import annotations

import torch
from torch import nn

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
)
def spectrogram_cnn(
    spec: TaskSpec,
    arch: str = "efficientnet_b0",
    drop_rate: float = 0.2,
    width: float = 1.0,
    depth: float = 1.0,
    pretrained: bool = False,
) -> nn.Module:
    """`arch` is any timm EfficientNet; `width`/`depth` scale B0's channels and blocks
    (EfficientNet's compound-scaling multipliers; 1.0 = the published B0), which is how the
    CPU presets and tests shrink it. `pretrained` reads timm weights from the local HF cache
    only; nothing is downloaded."""
    import timm
    from timm.models import efficientnet

    common = {"in_chans": 1, "num_classes": spec.num_classes, "drop_rate": drop_rate}
    if (width, depth) == (1.0, 1.0):
        backbone = timm.create_model(arch, pretrained=pretrained, **common)
    else:
        if arch != "efficientnet_b0" or pretrained:
            raise ValueError("width/depth scaling applies to efficientnet_b0 without pretrained weights")
        # timm exposes the multipliers only through its generator function.
        backbone = efficientnet._gen_efficientnet(
            "efficientnet_b0", channel_multiplier=width, depth_multiplier=depth, **common
        )
    return SpectrogramCNN(backbone)
