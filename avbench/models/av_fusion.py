"""OpenAV's AV model: ResNet18 on log-mel, ResNet18-LSTM on lips, attention fusion.

A ResNet18 reads each segment's log-mel, a ResNet18 + 2-layer LSTM each segment's lip frames;
a linear map over the segment axis gives `hidden_features` tokens per modality, and a stack of
`encoder_decoder` attention encoders fuses them, each encoder's output decoded, the decoders
averaged.

Kept from the seed (DmitryRyumin/OpenAV, openav/modules/nn/models.py): the segment mixing,
the single-head attention (Q, K, V linear, scaled by sqrt(d), no output projection), the
first encoder's learned λ between the tokens and their self-attention, the later encoders' λ
between self-attention on the tokens and cross-attention to the previous encoder's output,
LayerNorms and the final linear map of each encoder, and decoders that average the tokens
→ hidden_units → classes. Changed, because they were mistakes:
- The seed averaged the decoders' softmaxes and then applied cross-entropy (a second
  softmax). Here the model returns log(mean of the decoders' softmaxes): logits whose softmax
  is exactly that average, so cross-entropy is the mixture's true negative log-likelihood.
- One version of the seed decoded the raw tokens and never the last encoder's output (with
  one block, no encoder trained at all); here decoder k reads encoder k's output.
- The encoders' feed-forward was a single linear map (no nonlinearity between it and the
  block's output map); here it has a ReLU.
- A frozen extractor (`requires_grad`) stays in eval mode: its BatchNorm statistics and its
  dropout are frozen with its weights, so it really is a fixed function.
The extractors are OpenAV's own, named as in its `AVModel` (`feature_audio`: ResNet18 on one
channel, `feature_video`: ResNet18 + 2 LSTMs, see avbench/models/_openav_nets.py), so OpenAV's
published weights load strictly and give its features; `audio_width` / `video_width` (64 =
OpenAV) and `lstm_size` (512) shrink them for CPUs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from avbench.errors import ConfigError
from avbench.models._heads import classifier, mean_probability_logits
from avbench.models._openav_nets import LipReader, ResNet18
from avbench.models._weights import load_module_weights
from avbench.registry import register_model
from avbench.spec import TaskSpec

# requires_grad → the extractors it freezes (the seed's meaning of each value).
FREEZE = {
    "none": (),
    "a": ("feature_audio",),
    "v": ("feature_video",),
    "av": ("feature_audio", "feature_video"),
}
# The model argument holding each extractor's weights file (OpenAV's config keys).
WEIGHT_FIELDS = {"path_to_model_fa": "feature_audio", "path_to_model_fv": "feature_video"}


class SingleHeadAttention(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(self.query(queries), self.key(keys), self.value(keys))


class FusionEncoder(nn.Module):
    """The first block mixes the tokens with their self-attention by a learned λ; a later one
    mixes self-attention on the tokens with cross-attention to the previous block's output.
    λ starts at 1, as in the seed."""

    def __init__(self, dim: int, first: bool):
        super().__init__()
        self.self_attention = SingleHeadAttention(dim)
        self.cross_attention = None if first else SingleHeadAttention(dim)
        self.mix = nn.Parameter(torch.tensor(1.0))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.feed_forward = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, tokens: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
        attended = self.self_attention(tokens, tokens)
        if self.cross_attention is None:
            hidden = self.norm1(self.mix * tokens + (1 - self.mix) * attended)
        else:
            mixed = self.mix * attended + (1 - self.mix) * self.cross_attention(tokens, previous)
            hidden = self.norm1(tokens + mixed)
        hidden = self.norm2(hidden + F.relu(self.feed_forward(hidden)))
        return self.out(hidden)


class AVFusion(nn.Module):
    def __init__(
        self,
        spec: TaskSpec,
        *,
        audio_width: int,
        video_width: int,
        lstm_size: int,
        input_dim: int,
        hidden_units: int,
        hidden_features: int,
        encoder_decoder: int,
        dropout: float,
        frozen: tuple[str, ...],
    ):
        super().__init__()
        segments, channels = spec.shapes["audio"][:2]
        self.feature_audio = ResNet18(channels, audio_width)
        self.feature_video = LipReader(video_width, lstm_size, dropout)
        # The seed's extractors gave input_dim (512) features; narrower ones are projected.
        self.audio_proj = _projection(self.feature_audio.out_features, input_dim)
        self.video_proj = _projection(self.feature_video.out_features, input_dim)
        # Linear over the segment axis: S segment features → hidden_features tokens.
        self.audio_tokens = nn.Linear(segments, hidden_features)
        self.video_tokens = nn.Linear(segments, hidden_features)
        self.encoders = nn.ModuleList(FusionEncoder(input_dim, first=k == 0) for k in range(encoder_decoder))
        self.decoders = nn.ModuleList(
            nn.Sequential(nn.Linear(input_dim, hidden_units), nn.ReLU(), classifier(hidden_units, spec))
            for _ in range(encoder_decoder)
        )
        self.frozen = frozen
        for name in frozen:
            getattr(self, name).requires_grad_(False)

    def train(self, mode: bool = True) -> AVFusion:
        super().train(mode)
        for name in self.frozen:
            getattr(self, name).eval()
        return self

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        audio, video = batch["audio"], batch["video"]  # [B, S, 1, mels, frames], [B, S, T, 3, H, W]
        size, segments = audio.shape[:2]
        audio_features = self.audio_proj(self.feature_audio(audio.flatten(0, 1)).view(size, segments, -1))
        video_features = self.video_proj(self.feature_video(video.flatten(0, 1)).view(size, segments, -1))
        tokens = torch.cat(
            [
                self.audio_tokens(audio_features.transpose(1, 2)).transpose(1, 2),
                self.video_tokens(video_features.transpose(1, 2)).transpose(1, 2),
            ],
            dim=1,
        )
        outputs, previous = [], None
        for encoder, decoder in zip(self.encoders, self.decoders, strict=True):
            previous = encoder(tokens, previous)
            outputs.append(decoder(previous.mean(dim=1)))
        # log of the mean probability: the seed's average of softmaxes, as logits (per head).
        return mean_probability_logits(outputs)


def _projection(width: int, dim: int) -> nn.Module:
    return nn.Identity() if width == dim else nn.Linear(width, dim)


def check_av_fusion(
    spec: TaskSpec,
    *,
    encoder_decoder: int,
    requires_grad: str = "none",
    allow_random_frozen: bool = False,
    path_to_model_fa: str | None = None,
    path_to_model_fv: str | None = None,
    **sizes,
) -> None:
    if len(spec.shapes.get("audio", ())) != 4 or len(spec.shapes.get("video", ())) != 5:
        raise ConfigError(
            "av-fusion reads data.max_segment segments per clip (OpenAV: 2); set data.max_segment to 1 or more"
        )
    if not 1 <= encoder_decoder <= 50:
        raise ConfigError(f"model_args.encoder_decoder must be 1 to 50 (got {encoder_decoder})")
    for name in ("audio_width", "video_width", "lstm_size", "input_dim", "hidden_units", "hidden_features"):
        if sizes[name] <= 0:
            raise ConfigError(f"model_args.{name} must be positive (got {sizes[name]})")
    paths = {"path_to_model_fa": path_to_model_fa, "path_to_model_fv": path_to_model_fv}
    for field, path in paths.items():
        if path is not None and not Path(path).expanduser().is_file():
            raise ConfigError(f"model_args.{field}: no such file: {path}")
    _check_frozen_have_weights(requires_grad, paths, allow_random_frozen)


def _check_frozen_have_weights(requires_grad: str, paths: dict[str, str | None], allow_random: bool) -> None:
    """Freezing a randomly initialised extractor trains the fusion on noise features: almost
    always a forgotten weights file, so it takes an explicit yes."""
    for field, name in WEIGHT_FIELDS.items():
        if name in FREEZE.get(requires_grad, ()) and paths[field] is None and not allow_random:
            raise ConfigError(
                f"model_args.requires_grad={requires_grad} freezes {name}, which has no weights: set "
                f"model_args.{field} to its weights file, or model_args.allow_random_frozen=true to freeze "
                "random features on purpose"
            )


@register_model(
    "av-fusion",
    tiny={
        "audio_width": 8,
        "video_width": 8,
        "lstm_size": 16,
        "input_dim": 16,
        "hidden_units": 16,
        "hidden_features": 4,
        "encoder_decoder": 2,
    },
    modalities=("audio", "video"),
    tiny_data={"max_segment": 2, "segment_seconds": 0.5, "num_frames": 4, "image_size": 32},
    check=check_av_fusion,
    weights=WEIGHT_FIELDS,
    # OpenAV's inputs: 64-band log-mel at n_fft 2048 / hop 64, 2 segments of 29 frames of 88 x 88.
    defaults={
        "data": {
            "win_ms": 128.0,
            "hop_ms": 4.0,
            "max_segment": 2,
            "segment_seconds": 1.22,
            "num_frames": 29,
            "image_size": 88,
        },
        "train": {"batch_size": 8},
    },
    search={
        "model_args.encoder_decoder": {"values": [1, 2, 3, 5]},
        "model_args.hidden_units": {"values": [128, 256, 512]},
        "model_args.hidden_features": {"values": [32, 64, 128]},
    },
    presets={
        "tiny": {"data": {"win_ms": 25.0, "hop_ms": 10.0}},
        "cpu": {
            "data": {"n_mels": 32, "win_ms": 25.0, "hop_ms": 10.0, "segment_seconds": 1.0, "num_frames": 8},
            "model_args": {"audio_width": 16, "video_width": 16, "lstm_size": 64, "input_dim": 64},
        },
    },
)
def av_fusion(
    spec: TaskSpec,
    encoder_decoder: int = 5,
    hidden_units: int = 256,
    hidden_features: int = 128,
    input_dim: int = 512,
    requires_grad: Literal["none", "a", "v", "av"] = "none",
    path_to_model_fa: str | None = None,
    path_to_model_fv: str | None = None,
    allow_random_frozen: bool = False,
    audio_width: int = 64,
    video_width: int = 64,
    lstm_size: int = 512,
    dropout: float = 0.2,
) -> nn.Module:
    """`requires_grad` names what is frozen (the seed's meaning): none = train everything,
    a = freeze the audio extractor, v = the video extractor, av = both (only the fusion
    trains). `path_to_model_fa` / `path_to_model_fv`: extractor weights, OpenAV's files
    (`resnet18_torch_audio.pt`, `resnet18_lstm_torch_video.pt`), an OpenAV AVModel or an
    avbench run's best.pt; freezing an extractor without them needs `allow_random_frozen`.
    `audio_width` / `video_width` (ResNet base width, 64 = OpenAV) and `lstm_size` (512 in
    the seed) shrink the model for CPUs; weights files must have the same sizes."""
    paths = {"path_to_model_fa": path_to_model_fa, "path_to_model_fv": path_to_model_fv}
    sizes = dict(
        audio_width=audio_width,
        video_width=video_width,
        lstm_size=lstm_size,
        input_dim=input_dim,
        hidden_units=hidden_units,
        hidden_features=hidden_features,
    )
    check_av_fusion(
        spec,
        encoder_decoder=encoder_decoder,
        requires_grad=requires_grad,
        allow_random_frozen=allow_random_frozen,
        **paths,
        **sizes,
    )
    frozen = FREEZE[requires_grad]
    model = AVFusion(spec, **sizes, encoder_decoder=encoder_decoder, dropout=dropout, frozen=frozen)
    sources = []
    for field, name in WEIGHT_FIELDS.items():
        path = paths[field]
        if path is not None:
            load_module_weights(getattr(model, name), path, field=field, name=name)
        state = "frozen" if name in frozen else "trained"
        sources.append(f"{name}: {path or 'random init'} ({state})")
    model.weights_source = "; ".join(sources)
    return model
