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

from avbench.models import _wav2vec2_encoder as w2v
from avbench.models._efficientnet import EfficientNetOptions, efficientnet
from avbench.models._options import flat_options
from avbench.registry import register_model
from avbench.spec import TaskSpec


class Wav2Vec2CNN(w2v.EncoderWithHead):
    lr_name = "cnn_lr"

    def __init__(self, encoder: nn.Module, backbone: nn.Module, cnn_lr: float | None, *args, **kwargs):
        super().__init__(encoder, cnn_lr, *args, **kwargs)
        self.backbone = backbone

    def head_module(self) -> nn.Module:
        return self.backbone

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.backbone(self.features(batch).unsqueeze(1))


@register_model(
    "wav2vec2-cnn",
    tiny={**w2v.TINY_ENCODER, "width": 0.25, "depth": 0.25},
    modalities=("audio",),
    audio_input="waveform",
    skips_parameters=True,  # layerdrop
    defaults={"data": {"sample_rate": 16000}, "train": {"optimizer": "adam"}},
    search={"model_args.cnn_lr": {"distribution": "log_uniform_values", "min": 1.0e-4, "max": 1.0e-2}},
    presets={"cpu": {"model_args": {**w2v.CPU_ENCODER, "width": 0.25, "depth": 0.25}}},
)
@flat_options(cnn=EfficientNetOptions, encoder=w2v.EncoderOptions)
def wav2vec2_cnn(
    spec: TaskSpec,
    cnn: EfficientNetOptions = EfficientNetOptions(),
    cnn_lr: float | None = None,
    encoder: w2v.EncoderOptions = w2v.EncoderOptions(),
    feature_source: w2v.FeatureSource = "hidden",
) -> nn.Module:
    """`arch`, `drop_rate`, `width`, `depth` are spectrogram-cnn's EfficientNet options (random
    init: the embedding map is no photograph); `cnn_lr` is the EfficientNet's learning rate
    (train.lr when unset); `feature_source` the wav2vec2 tensor it reads as an image
    (the seed's: extract_features, [frames, 512]); the others are wav2vec2's (see avbench.models.wav2vec2)."""
    from transformers import Wav2Vec2Model

    w2v.check_head_lr("cnn_lr", cnn_lr)
    wav2vec2, source = w2v.build_wav2vec2(Wav2Vec2Model, spec, encoder)
    backbone = efficientnet(spec, cnn)
    return Wav2Vec2CNN(wav2vec2, backbone, cnn_lr, source, encoder.freeze_base_model, feature_source)
