"""EfficientNet (timm) on a one-channel image, as emotions-classify used it on spectrograms
and on wav2vec2 embedding maps. Shared by spectrogram-cnn and wav2vec2-cnn."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from avbench.errors import ConfigError
from avbench.models._heads import classifier
from avbench.spec import TaskSpec


@dataclass(frozen=True)
class EfficientNetOptions:
    """The model_args of an EfficientNet. `arch` is any timm EfficientNet; `width`/`depth` scale
    B0's channels and blocks (EfficientNet's compound-scaling multipliers; 1.0 = the published
    B0), which is how the CPU presets and tests shrink it."""

    arch: str = "efficientnet_b0"
    drop_rate: float = 0.2
    width: float = 1.0
    depth: float = 1.0


def efficientnet(spec: TaskSpec, options: EfficientNetOptions, *, pretrained: bool = False) -> nn.Module:
    """An EfficientNet as `options` say. `pretrained` reads timm weights from the local HF cache
    only; nothing is downloaded. Its classifier is the task's (one Linear per head for several)."""
    import timm
    from timm.models import efficientnet as timm_efficientnet

    common = {"in_chans": 1, "num_classes": spec.num_classes, "drop_rate": options.drop_rate}
    if (options.width, options.depth) == (1.0, 1.0):
        model = timm.create_model(options.arch, pretrained=pretrained, **common)
    elif options.arch != "efficientnet_b0" or pretrained:
        raise ConfigError("model_args width/depth scale efficientnet_b0 without pretrained weights only")
    else:
        # timm exposes the multipliers only through its generator function.
        model = timm_efficientnet._gen_efficientnet(
            "efficientnet_b0", channel_multiplier=options.width, depth_multiplier=options.depth, **common
        )
    if spec.heads:
        model.classifier = classifier(model.classifier.in_features, spec)
    return model
