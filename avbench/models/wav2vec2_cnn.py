"""emotions-classify's Wav2Vec2CnnClassifier: EfficientNet (timm, one input channel) on the
wav2vec2 embedding map, the [1, frames, hidden] image of wav2vec2's last hidden state.

Cleaned up from the seed: any clip length (the seed hard-coded 249 frames, i.e. 5 s), logits
rather than softmax into cross-entropy, one head for the task's classes. The seed fed the frozen
conv features of a pretrained wav2vec2; `pretrained` + `freeze_base_model: true` is that
setup, and `num_layers: 0` skips the transformer as the seed did.

The experiments freeze wav2vec2 (`freeze_base_model: true`), as the seed did, for a measured
reason: when wav2vec2 trains too, its output drifts faster than the EfficientNet's batch-norm
running statistics follow, so the model that fits a batch in training mode (loss 0.03) fails the
same batch in eval mode (loss 3.2), and validation stays at chance.
"""

from __future__ import annotations

import torch
from torch import nn

from avbench.models._efficientnet import efficientnet
from avbench.models._wav2vec2_encoder import TINY_ENCODER, EncoderOptions, build_wav2vec2, normalize_waveform
from avbench.registry import register_model
from avbench.spec import TaskSpec


class Wav2Vec2CNN(nn.Module):
    def __init__(self, encoder: nn.Module, backbone: nn.Module, weights_source: str):
        super().__init__()
        self.encoder = encoder
        self.backbone = backbone
        self.weights_source = weights_source

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        embeddings = self.encoder(normalize_waveform(batch["audio"])).last_hidden_state  # [B, frames, hidden]
        return self.backbone(embeddings.unsqueeze(1))


@register_model(
    "wav2vec2-cnn",
    tiny={**TINY_ENCODER, "width": 0.25, "depth": 0.25},
    modalities=("audio",),
    audio_input="waveform",
)
def wav2vec2_cnn(
    spec: TaskSpec,
    arch: str = "efficientnet_b0",
    drop_rate: float = 0.2,
    width: float = 1.0,
    depth: float = 1.0,
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
) -> nn.Module:
    """`arch`, `drop_rate`, `width`, `depth` are spectrogram-cnn's EfficientNet options (random
    init: the embedding map is no photograph); the others are wav2vec2's (see
    avbench.models.wav2vec2)."""
    from transformers import Wav2Vec2Model

    options = EncoderOptions.from_args(locals())
    encoder, source = build_wav2vec2(Wav2Vec2Model, spec, options)
    backbone = efficientnet(spec.num_classes, arch=arch, drop_rate=drop_rate, width=width, depth=depth)
    return Wav2Vec2CNN(encoder, backbone, source)
