"""emotions-classify's Wav2Vec2FnClassifier: wav2vec2 features [B, frames, hidden] → 1-d
convolutions that summarise them → two fully connected layers → classes, with its own
learning rate for the head (`conv_lr`) next to wav2vec2's (`train.lr`, the seed's base_lr).

The head, as in the seed:
- `conv_h_count` kernel-1 convolutions with the frames as input channels, sliding along the
  feature axis: each is a learned weighting of the frames → conv_h_count × hidden values;
- `conv_w_count` kernel-1 convolutions with the features as input channels, sliding along
  time: each is a learned mix of the features per frame → conv_w_count × frames values;
- optionally the mean over time (hidden values) and the mean over features (frames values);
- these concatenated and L2-normalised → Linear(layer_1_size) → norm → ReLU →
  Linear(layer_2_size) → norm → ReLU → Linear(classes).

What is cleaned up: the features are transposed, not `view`ed, before the convolutions over
time (the seed's view scrambled frames and features); logits, not softmax, go to
cross-entropy; `conv_lr` really drives the head (the seed defined it and trained everything at
base_lr); the mean switches have defaults (the seed's example config lacked them and crashed);
the FC layers use LayerNorm where the seed had BatchNorm1d (same role, but a last training
batch of one example, which the seed avoided with drop_last, cannot break it); the seed's
emotion + state pair is the task's heads (a two-head task gives two). The seed skipped wav2vec2's
transformer and froze the rest; `num_layers: 0` with `freeze_base_model: true` and
pretrained weights is that setup.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from avbench.errors import ConfigError
from avbench.models._heads import classifier
from avbench.models._options import flat_options
from avbench.models._wav2vec2_encoder import (
    CPU_ENCODER,
    TINY_ENCODER,
    EncoderOptions,
    EncoderWithHead,
    FeatureSource,
    build_wav2vec2,
    check_head_lr,
    feature_width,
    frame_count,
)
from avbench.registry import register_model
from avbench.spec import TaskSpec


def _pointwise_conv(in_channels: int, out_channels: int) -> nn.Module:
    return nn.Sequential(nn.Conv1d(in_channels, out_channels, kernel_size=1), nn.BatchNorm1d(out_channels), nn.ReLU())


@dataclass(frozen=True)
class ConvFnOptions:
    """The head's model_args (defaults: the seed's example config)."""

    conv_h_count: int = 1
    conv_w_count: int = 1
    time_mean: bool = True
    feature_mean: bool = False
    layer_1_size: int = 256
    layer_2_size: int = 256


class ConvFnHead(nn.Module):
    def __init__(self, frames: int, hidden: int, spec: TaskSpec, options: ConvFnOptions):
        super().__init__()
        h_count, w_count = options.conv_h_count, options.conv_w_count
        self.over_features = _pointwise_conv(frames, h_count) if h_count else None
        self.over_time = _pointwise_conv(hidden, w_count) if w_count else None
        self.time_mean, self.feature_mean = options.time_mean, options.feature_mean
        width = hidden * (h_count + options.time_mean) + frames * (w_count + options.feature_mean)
        layer_1, layer_2 = options.layer_1_size, options.layer_2_size
        self.classifier = nn.Sequential(
            nn.Linear(width, layer_1),
            nn.LayerNorm(layer_1),
            nn.ReLU(),
            nn.Linear(layer_1, layer_2),
            nn.LayerNorm(layer_2),
            nn.ReLU(),
            classifier(layer_2, spec),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features: [B, frames, hidden]."""
        parts = []
        if self.over_features is not None:
            parts.append(self.over_features(features).flatten(1))  # [B, conv_h_count * hidden]
        if self.over_time is not None:
            parts.append(self.over_time(features.transpose(1, 2)).flatten(1))  # [B, conv_w_count * frames]
        if self.time_mean:
            parts.append(features.mean(dim=1))
        if self.feature_mean:
            parts.append(features.mean(dim=2))
        return self.classifier(F.normalize(torch.cat(parts, dim=1), dim=1))


class Wav2Vec2Fn(EncoderWithHead):
    lr_name = "conv_lr"

    def __init__(self, encoder: nn.Module, head: ConvFnHead, conv_lr: float | None, *args, **kwargs):
        super().__init__(encoder, conv_lr, *args, **kwargs)
        self.head = head

    def head_module(self) -> nn.Module:
        return self.head

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.features(batch))


@register_model(
    "wav2vec2-fn",
    tiny={
        **TINY_ENCODER,
        "conv_h_count": 2,
        "conv_w_count": 1,
        "feature_mean": True,
        "layer_1_size": 16,
        "layer_2_size": 8,
    },
    modalities=("audio",),
    audio_input="waveform",
    skips_parameters=True,  # layerdrop
    defaults={"data": {"sample_rate": 16000}, "train": {"optimizer": "adam"}},
    search={
        "model_args.conv_h_count": {"values": [0, 1, 2, 4]},
        "model_args.conv_w_count": {"values": [0, 1, 2]},
        "model_args.layer_1_size": {"values": [64, 128, 256]},
        "model_args.layer_2_size": {"values": [32, 64, 128]},
        "model_args.conv_lr": {"distribution": "log_uniform_values", "min": 1.0e-4, "max": 1.0e-2},
    },
    presets={"cpu": {"model_args": CPU_ENCODER}},
)
@flat_options(head=ConvFnOptions, encoder=EncoderOptions)
def wav2vec2_fn(
    spec: TaskSpec,
    head: ConvFnOptions = ConvFnOptions(),
    conv_lr: float | None = None,
    encoder: EncoderOptions = EncoderOptions(),
    feature_source: FeatureSource = "hidden",
) -> nn.Module:
    """Head defaults are the seed's example config (conv_h 1, conv_w 1, 256/256). `time_mean`
    and `feature_mean` are the seed's h_mean_enable and w_mean_enable. `feature_source` is the
    wav2vec2 tensor the head reads (the seed's: projection). The wav2vec2 options are
    wav2vec2's (see avbench.models.wav2vec2)."""
    from transformers import Wav2Vec2Model

    if min(head.conv_h_count, head.conv_w_count) < 0 or min(head.layer_1_size, head.layer_2_size) < 1:
        raise ConfigError("wav2vec2-fn: conv counts must be >= 0 and layer sizes >= 1")
    if not (head.conv_h_count or head.conv_w_count or head.time_mean or head.feature_mean):
        raise ConfigError(
            "wav2vec2-fn has no features to classify: set conv_h_count or conv_w_count above 0, "
            "or time_mean / feature_mean to true"
        )
    check_head_lr("conv_lr", conv_lr)
    wav2vec2, source = build_wav2vec2(Wav2Vec2Model, spec, encoder)
    frames = frame_count(wav2vec2.config, spec.shapes["audio"][-1])
    fn_head = ConvFnHead(frames, feature_width(wav2vec2.config, feature_source), spec, head)
    return Wav2Vec2Fn(wav2vec2, fn_head, conv_lr, source, encoder.freeze_base_model, feature_source)
