"""wav2vec2 fine-tuned for audio classification (the wav2vec2 lab): HF
`Wav2Vec2ForSequenceClassification` with the facebook/wav2vec2-base-960h architecture, i.e.
wav2vec2 → Linear(hidden, 256) → mean over frames → Linear(256, classes)."""

from __future__ import annotations

import torch
from torch import nn

from avbench.models._heads import classifier
from avbench.models._options import flat_options
from avbench.models._wav2vec2_encoder import (
    CPU_ENCODER,
    TINY_ENCODER,
    EncoderOptions,
    Wav2Vec2Based,
    build_wav2vec2,
    normalize_waveform,
)
from avbench.registry import register_model
from avbench.spec import TaskSpec


class Wav2Vec2Classifier(Wav2Vec2Based):
    def __init__(self, model: nn.Module, weights_source: str, base_frozen: bool):
        super().__init__()
        self.model = model
        self.weights_source = weights_source
        self.base_frozen = base_frozen

    def wav2vec2_model(self) -> nn.Module:
        return self.model.wav2vec2

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(normalize_waveform(batch["audio"])).logits


@register_model(
    "wav2vec2",
    tiny=TINY_ENCODER,
    modalities=("audio",),
    audio_input="waveform",
    skips_parameters=True,  # layerdrop
    defaults={"data": {"sample_rate": 16000}, "train": {"optimizer": "adam", "scheduler": "cosine"}},
    presets={"cpu": {"model_args": CPU_ENCODER}},
)
@flat_options(encoder=EncoderOptions)
def wav2vec2(
    spec: TaskSpec,
    encoder: EncoderOptions = EncoderOptions(),
) -> nn.Module:
    """`pretrained`: a directory written by `save_pretrained`, or a hub id such as
    facebook/wav2vec2-base-960h that is already in the local HF cache; absent, the published
    architecture starts from random weights. The size knobs (None = base-960h's 12 layers of
    768, 12 heads, FFN 3072, 7 conv layers of 512) shrink it for CPUs."""
    from transformers import Wav2Vec2ForSequenceClassification

    model, source = build_wav2vec2(Wav2Vec2ForSequenceClassification, spec, encoder, num_labels=spec.num_classes)
    if spec.heads:
        model.classifier = classifier(model.config.classifier_proj_size, spec)
    return Wav2Vec2Classifier(model, source, encoder.freeze_base_model)
