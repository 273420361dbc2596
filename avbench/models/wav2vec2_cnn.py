"""emotions-classify's Wav2Vec2CnnClassifier: EfficientNet (timm, one input channel) on the
wav2vec2 embedding map, the [1, frames, hidden] image of wav2vec2's last hidden state.

Cleaned up from the seed: any clip length (the seed hard-coded 249 frames, i.e. 5 s), logits
rather than softmax into cross-entropy, one head for the task's classes. The seed fed the frozen
conv features of a pretrained wav2vec2; `pretrained` + `freeze_base_model: true` is that
setup, and `num_layers: 0` skips the transformer as the seed did.

Two learning rates, as wav2vec2-fn has: wav2vec2 at `train.lr`, the EfficientNet at
`cnn_lr`. Measured on the CREMA-D stand-in, both one-rate alternatives fail: with one fast rate
wav2vec2's output drifts faster than the EfficientNet's batch-norm running statistics follow
(a batch fitted in training mode, loss 0.03, fails in eval mode, loss 3.2); with wav2vec2
frozen (and random) the EfficientNet memorises the training clips (train accuracy 0.87,
validation 0.2). A slow wav2vec2 under a fast EfficientNet learns.
"""

from __future__ import annotations

import torch
from torch import nn

from avbench.errors import ConfigError
from avbench.models._efficientnet import efficientnet
from avbench.models._wav2vec2_encoder import (
    CPU_ENCODER,
    TINY_ENCODER,
    EncoderOptions,
    FeatureSource,
    Wav2Vec2Based,
    build_wav2vec2,
    encoder_features,
    normalize_waveform,
    two_rate_groups,
)
from avbench.registry import register_model
from avbench.spec import TaskSpec


class Wav2Vec2CNN(Wav2Vec2Based):
    def __init__(
        self,
        encoder: nn.Module,
        backbone: nn.Module,
        cnn_lr: float | None,
        weights_source: str,
        base_frozen: bool,
        feature_source: FeatureSource = "hidden",
    ):
        super().__init__()
        self.encoder = encoder
        self.feature_source = feature_source
        self.backbone = backbone
        self.cnn_lr = cnn_lr
        self.weights_source = weights_source
        self.base_frozen = base_frozen

    def wav2vec2_model(self) -> nn.Module:
        return self.encoder

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        embeddings = encoder_features(self.encoder, normalize_waveform(batch["audio"]), self.feature_source)
        return self.backbone(embeddings.unsqueeze(1))

    def param_groups(self, lr: float) -> list[dict]:
        """wav2vec2 at `lr` (train.lr), the EfficientNet at `cnn_lr`."""
        return two_rate_groups(self.encoder, self.backbone, lr, self.cnn_lr, "cnn_lr")


@register_model(
    "wav2vec2-cnn",
    tiny={**TINY_ENCODER, "width": 0.25, "depth": 0.25},
    modalities=("audio",),
    audio_input="waveform",
    skips_parameters=True,  # layerdrop
    defaults={"data": {"sample_rate": 16000}, "train": {"optimizer": "adam"}},
    search={"model_args.cnn_lr": {"distribution": "log_uniform_values", "min": 1.0e-4, "max": 1.0e-2}},
    presets={"cpu": {"model_args": {**CPU_ENCODER, "width": 0.25, "depth": 0.25}}},
)
def wav2vec2_cnn(
    spec: TaskSpec,
    arch: str = "efficientnet_b0",
    drop_rate: float = 0.2,
    width: float = 1.0,
    depth: float = 1.0,
    cnn_lr: float | None = None,
    pretrained: str | None = None,
    freeze_feature_encoder: bool = True,
    freeze_base_model: bool = False,
    num_layers: int | None = None,
    hidden_size: int | None = None,
    num_heads: int | None = None,
    intermediate_size: int | None = None,
    conv_channels: int | None = None,
    layerdrop: float = 0.1,
    mask_time_prob: float = 0.05,
    feature_source: FeatureSource = "hidden",
) -> nn.Module:
    """`arch`, `drop_rate`, `width`, `depth` are spectrogram-cnn's EfficientNet options (random
    init: the embedding map is no photograph); `cnn_lr` is the EfficientNet's learning rate
    (train.lr when unset); `feature_source` the wav2vec2 tensor it reads as an image
    (the seed's: extract_features, [frames, 512]); the others are wav2vec2's (see avbench.models.wav2vec2)."""
    from transformers import Wav2Vec2Model

    options = EncoderOptions.from_args(locals())
    if cnn_lr is not None and cnn_lr <= 0:
        raise ConfigError(f"model_args.cnn_lr must be positive, got {cnn_lr}")
    encoder, source = build_wav2vec2(Wav2Vec2Model, spec, options)
    backbone = efficientnet(spec, arch=arch, drop_rate=drop_rate, width=width, depth=depth)
    return Wav2Vec2CNN(encoder, backbone, cnn_lr, source, freeze_base_model, feature_source)
