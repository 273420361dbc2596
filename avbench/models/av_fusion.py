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
The ResNet18s use torchvision's BasicBlock and resnet18 layout (the same parameter names)
with the standard stem (7×7/2 conv, 3×3/2 max-pool) instead of the seed's TensorFlow-style
"same" padding, and a base `width` (64 = resnet18) so CPU presets and tests can shrink them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from avbench.errors import ConfigError
from avbench.registry import register_model
from avbench.spec import TaskSpec

# requires_grad → the extractors it freezes (the seed's meaning of each value).
FREEZE = {
    "none": (),
    "a": ("audio_extractor",),
    "v": ("video_extractor",),
    "av": ("audio_extractor", "video_extractor"),
}


class ResNet18Trunk(nn.Module):
    """torchvision's resnet18 up to its global pooling, with `in_channels` inputs and base
    width `width` (channels width, 2·width, 4·width, 8·width): [N, C, H, W] → [N, 8·width].
    At width 64 and 3 channels its state dict is torchvision resnet18's without `fc`."""

    def __init__(self, in_channels: int, width: int):
        from torchvision.models.resnet import BasicBlock, conv1x1

        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = width
        for index, stride in enumerate((1, 2, 2, 2), 1):
            planes = width * 2 ** (index - 1)
            downsample = None
            if stride != 1 or channels != planes:
                downsample = nn.Sequential(conv1x1(channels, planes, stride), nn.BatchNorm2d(planes))
            setattr(
                self,
                f"layer{index}",
                nn.Sequential(BasicBlock(channels, planes, stride, downsample), BasicBlock(planes, planes)),
            )
            channels = planes
        self.out_features = channels
        for module in self.modules():  # torchvision's ResNet initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class VideoExtractor(nn.Module):
    """ResNet18 on every frame → 2-layer LSTM → its last time step: [N, T, 3, H, W] → [N, lstm_size]."""

    def __init__(self, width: int, lstm_size: int, dropout: float):
        super().__init__()
        self.trunk = ResNet18Trunk(3, width)
        # num_layers=2 with dropout between them = the seed's LSTM → Dropout → LSTM.
        self.lstm = nn.LSTM(self.trunk.out_features, lstm_size, num_layers=2, batch_first=True, dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.out_features = lstm_size

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        count, steps = frames.shape[:2]
        per_frame = self.trunk(frames.flatten(0, 1)).view(count, steps, -1)
        sequence, _ = self.lstm(per_frame)
        return self.dropout(sequence[:, -1])


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
        self.audio_extractor = ResNet18Trunk(channels, audio_width)
        self.video_extractor = VideoExtractor(video_width, lstm_size, dropout)
        # The seed's extractors gave input_dim (512) features; narrower ones are projected.
        self.audio_proj = _projection(self.audio_extractor.out_features, input_dim)
        self.video_proj = _projection(self.video_extractor.out_features, input_dim)
        # Linear over the segment axis: S segment features → hidden_features tokens.
        self.audio_tokens = nn.Linear(segments, hidden_features)
        self.video_tokens = nn.Linear(segments, hidden_features)
        self.encoders = nn.ModuleList(FusionEncoder(input_dim, first=k == 0) for k in range(encoder_decoder))
        self.decoders = nn.ModuleList(
            nn.Sequential(nn.Linear(input_dim, hidden_units), nn.ReLU(), nn.Linear(hidden_units, spec.num_classes))
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
        audio_features = self.audio_proj(self.audio_extractor(audio.flatten(0, 1)).view(size, segments, -1))
        video_features = self.video_proj(self.video_extractor(video.flatten(0, 1)).view(size, segments, -1))
        tokens = torch.cat(
            [
                self.audio_tokens(audio_features.transpose(1, 2)).transpose(1, 2),
                self.video_tokens(video_features.transpose(1, 2)).transpose(1, 2),
            ],
            dim=1,
        )
        log_probs, previous = [], None
        for encoder, decoder in zip(self.encoders, self.decoders, strict=True):
            previous = encoder(tokens, previous)
            log_probs.append(decoder(previous.mean(dim=1)).log_softmax(dim=-1))
        # log of the mean probability: the seed's average of softmaxes, as logits.
        return torch.logsumexp(torch.stack(log_probs), dim=0) - math.log(len(log_probs))


def _projection(width: int, dim: int) -> nn.Module:
    return nn.Identity() if width == dim else nn.Linear(width, dim)


def load_extractor(module: nn.Module, path: str, name: str) -> None:
    """Load `module`'s weights from a state dict file: the extractor's own
    (`torch.save(model.audio_extractor.state_dict(), path)`), or a whole av-fusion state dict
    or avbench checkpoint (a run's best.pt), from which the `name.` entries are taken."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # an avbench checkpoint
    prefix = f"{name}."
    if any(key.startswith(prefix) for key in state):
        state = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ConfigError(
            f"{path} does not fit the {name.replace('_', ' ')} (same widths needed): "
            f"{first[1].strip() if len(first) > 1 else first[0]}"
        ) from None


def check_av_fusion(
    spec: TaskSpec, *, encoder_decoder: int, path_to_model_fa: str | None, path_to_model_fv: str | None, **sizes
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
    for name, path in (("path_to_model_fa", path_to_model_fa), ("path_to_model_fv", path_to_model_fv)):
        if path is not None and not Path(path).expanduser().is_file():
            raise ConfigError(f"model_args.{name}: no such file: {path}")


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
    audio_width: int = 64,
    video_width: int = 64,
    lstm_size: int = 512,
    dropout: float = 0.2,
) -> nn.Module:
    """`requires_grad` names what is frozen (the seed's meaning): none = train everything,
    a = freeze the audio extractor, v = the video extractor, av = both (only the fusion
    trains). `path_to_model_fa` / `path_to_model_fv`: extractor weights (see load_extractor);
    without them the extractors start from random weights, and freezing them freezes random
    features. `audio_width` / `video_width` (ResNet base width, 64 = resnet18) and
    `lstm_size` (512 in the seed) shrink the model for CPUs."""
    args = dict(
        encoder_decoder=encoder_decoder,
        path_to_model_fa=path_to_model_fa,
        path_to_model_fv=path_to_model_fv,
        audio_width=audio_width,
        video_width=video_width,
        lstm_size=lstm_size,
        input_dim=input_dim,
        hidden_units=hidden_units,
        hidden_features=hidden_features,
    )
    check_av_fusion(spec, **args)
    frozen = FREEZE[requires_grad]
    model = AVFusion(
        spec,
        audio_width=audio_width,
        video_width=video_width,
        lstm_size=lstm_size,
        input_dim=input_dim,
        hidden_units=hidden_units,
        hidden_features=hidden_features,
        encoder_decoder=encoder_decoder,
        dropout=dropout,
        frozen=frozen,
    )
    sources = []
    for name, path in (("audio_extractor", path_to_model_fa), ("video_extractor", path_to_model_fv)):
        if path is not None:
            load_extractor(getattr(model, name), str(Path(path).expanduser()), name)
        state = "frozen" if name in frozen else "trained"
        sources.append(f"{name.split('_')[0]} extractor: {path or 'random init'} ({state})")
    model.weights_source = "; ".join(sources)
    return model
