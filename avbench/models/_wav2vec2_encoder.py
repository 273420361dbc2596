"""What the three wav2vec2 models share: the facebook/wav2vec2-base-960h architecture (with
size knobs so a CPU preset and the tests can shrink it), real weights from a local path or the
local Hugging Face cache only (nothing is downloaded), freezing, wav2vec2's input
normalisation, and the check that a clip is long enough for the conv feature encoder.

Not a model itself: the leading underscore keeps the registry from importing it as one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from avbench.errors import ConfigError
from avbench.spec import TaskSpec

SAMPLE_RATE = 16000  # what wav2vec2 was pretrained on; its conv strides assume it

# facebook/wav2vec2-base-960h's config.json, written out so that "the published architecture"
# does not hang on a library's defaults (transformers' own default feat_proj_dropout is 0.0).
BASE_960H = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout": 0.1,
    "activation_dropout": 0.1,
    "attention_dropout": 0.1,
    "feat_proj_dropout": 0.1,
    "final_dropout": 0.1,
    "layerdrop": 0.1,
    "layer_norm_eps": 1e-5,
    "initializer_range": 0.02,
    "feat_extract_norm": "group",
    "feat_extract_activation": "gelu",
    "conv_bias": False,
    "conv_dim": [512] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "do_stable_layer_norm": False,
    "apply_spec_augment": True,
    "mask_time_prob": 0.05,
    "mask_time_length": 10,
    "mask_time_min_masks": 2,
    "mask_feature_prob": 0.0,
    "classifier_proj_size": 256,
}

# The encoder of every wav2vec2 model's tiny variant (tests on a CPU): layerdrop off so that
# every layer runs and gets a gradient.
TINY_ENCODER = {
    "num_layers": 1,
    "hidden_size": 32,
    "num_heads": 2,
    "intermediate_size": 64,
    "conv_channels": 16,
    "layerdrop": 0.0,
}
# The encoder of their `cpu` variant: 2 layers of 128, a conv encoder 64 wide.
CPU_ENCODER = {"num_layers": 2, "hidden_size": 128, "num_heads": 4, "intermediate_size": 256, "conv_channels": 64}


@dataclass(frozen=True)
class EncoderOptions:
    """The model_args every wav2vec2 model takes. A size left at None is base-960h's (or, with
    `pretrained`, the checkpoint's)."""

    pretrained: str | None = None  # a local directory, or a hub id already in the local HF cache
    freeze_feature_encoder: bool = True  # the conv feature encoder, as HF's fine-tuning recipes do
    freeze_base_model: bool = False  # all of wav2vec2: only the head trains
    num_layers: int | None = None
    hidden_size: int | None = None
    num_heads: int | None = None
    intermediate_size: int | None = None
    conv_channels: int | None = None  # width of the 7 conv feature-encoder layers
    layerdrop: float = 0.1
    mask_time_prob: float = 0.05  # SpecAugment over time during training (0 = off)

    def sizes(self) -> dict[str, int]:
        """The size knobs that were set, under their Wav2Vec2Config names."""
        named = {
            "num_hidden_layers": self.num_layers,
            "hidden_size": self.hidden_size,
            "num_attention_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
        }
        sizes = {key: value for key, value in named.items() if value is not None}
        if self.conv_channels is not None:
            sizes["conv_dim"] = [self.conv_channels] * len(BASE_960H["conv_dim"])
        return sizes


class Wav2Vec2Based(nn.Module):
    """Base of the three models. A frozen wav2vec2 (`freeze_base_model`) is a fixed feature
    extractor, so it stays in eval mode when the model trains: no dropout, layerdrop or
    SpecAugment, and the head learns from the very features it is evaluated on (an
    EfficientNet's batch norms otherwise keep training-mode statistics of noisier features)."""

    base_frozen: bool = False

    def wav2vec2_model(self) -> nn.Module:
        raise NotImplementedError

    def train(self, mode: bool = True) -> Wav2Vec2Based:
        super().train(mode)
        if self.base_frozen:
            self.wav2vec2_model().eval()
        return self


class EncoderWithHead(Wav2Vec2Based):
    """A bare wav2vec2 encoder whose features feed a head with its own learning rate
    (`head_lr`, model_args `lr_name`; train.lr when unset)."""

    lr_name = "head_lr"

    def __init__(
        self,
        encoder: nn.Module,
        head_lr: float | None,
        weights_source: str,
        base_frozen: bool,
        feature_source: FeatureSource = "hidden",
    ):
        super().__init__()
        self.encoder = encoder
        self.feature_source = feature_source
        self.head_lr = head_lr
        self.weights_source = weights_source
        self.base_frozen = base_frozen

    def wav2vec2_model(self) -> nn.Module:
        return self.encoder

    def head_module(self) -> nn.Module:
        raise NotImplementedError

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The chosen wav2vec2 tensor of the batch's waveforms: [B, frames, width]."""
        return encoder_features(self.encoder, normalize_waveform(batch["audio"]), self.feature_source)

    def param_groups(self, lr: float) -> list[dict]:
        """wav2vec2 at `lr` (train.lr, the seed's base_lr), the head at its own rate."""
        return two_rate_groups(self.encoder, self.head_module(), lr, self.head_lr, self.lr_name)


def check_head_lr(name: str, value: float | None) -> None:
    if value is not None and value <= 0:
        raise ConfigError(f"model_args.{name} must be positive, got {value}")


def build_wav2vec2(model_class: type, spec: TaskSpec, options: EncoderOptions, **head_config) -> tuple[nn.Module, str]:
    """A `model_class` (Wav2Vec2Model or one of its heads) with real weights when
    `options.pretrained` names some, else randomly initialised from base-960h's config; frozen
    as asked. Also returns where the weights came from, for the run record."""
    _check_input(spec)
    _check_options(options)
    overrides = {"layerdrop": options.layerdrop, "mask_time_prob": options.mask_time_prob, **head_config}
    if options.pretrained:
        model = _load(model_class, options, overrides)
        source = f"loaded from {options.pretrained}"
    else:
        from transformers import Wav2Vec2Config

        config = Wav2Vec2Config(**{**BASE_960H, **options.sizes(), **overrides})
        _check_shape(config)
        model = model_class(config)
        knobs = ("num_layers", "hidden_size", "num_heads", "intermediate_size", "conv_channels")
        changed = ", ".join(f"{k}={getattr(options, k)}" for k in knobs if getattr(options, k) is not None)
        source = "random init from the wav2vec2-base-960h config" + (f" ({changed})" if changed else "")
    frame_count(model.config, spec.shapes["audio"][-1])  # fails early, naming data.clip_seconds
    encoder = getattr(model, "wav2vec2", model)
    if options.freeze_base_model:
        encoder.requires_grad_(False)
    elif options.freeze_feature_encoder:
        encoder.freeze_feature_encoder()
    return model, source


def frame_count(config, samples: int) -> int:
    """Frames the conv feature encoder makes of `samples` (49.9 per second at 16 kHz); a
    ConfigError naming the shortest usable clip when they are too few to train on."""
    frames = samples
    for kernel, stride in zip(config.conv_kernel, config.conv_stride, strict=True):
        frames = max((frames - kernel) // stride + 1, 0)
    # SpecAugment masks spans of mask_time_length frames while training, so it needs that many.
    needed = config.mask_time_length if config.apply_spec_augment and config.mask_time_prob > 0 else 1
    if frames < needed:
        shortest = _samples_for(config, needed)
        raise ConfigError(
            f"audio too short for wav2vec2: {samples} samples make {frames} frames after its conv feature encoder, "
            f"which needs at least {needed}{' (the SpecAugment span)' if needed > 1 else ''}; set data.clip_seconds "
            f">= {shortest / SAMPLE_RATE:.3f} at {SAMPLE_RATE} Hz"
        )
    return frames


def normalize_waveform(audio: torch.Tensor) -> torch.Tensor:
    """[B, 1, samples] → [B, samples] at zero mean and unit variance per example, as
    Wav2Vec2FeatureExtractor(do_normalize=True) prepares base-960h's input."""
    wave = audio.flatten(1).float()
    mean = wave.mean(dim=1, keepdim=True)
    variance = wave.var(dim=1, keepdim=True, unbiased=False)
    return (wave - mean) / torch.sqrt(variance + 1e-7)


def two_rate_groups(
    wav2vec2: nn.Module, head: nn.Module, lr: float, head_lr: float | None, head_name: str
) -> list[dict]:
    """Optimizer groups: wav2vec2 at `lr` (train.lr, the seed's base_lr), the head at
    `head_lr` (train.lr when unset); a frozen wav2vec2 has no group."""
    groups = [
        {"name": "base_lr", "params": _trainable(wav2vec2), "lr": lr},
        {"name": head_name, "params": _trainable(head), "lr": head_lr or lr},
    ]
    return [group for group in groups if group["params"]]


def _trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def _samples_for(config, frames: int) -> int:
    """The fewest samples that give `frames` frames: the receptive field plus a stride per frame."""
    receptive, hop = 1, 1
    for kernel, stride in zip(config.conv_kernel, config.conv_stride, strict=True):
        receptive += (kernel - 1) * hop
        hop *= stride
    return receptive + (frames - 1) * hop


def _check_input(spec: TaskSpec) -> None:
    shape = spec.shapes.get("audio", ())
    if len(shape) != 2:
        raise ConfigError(
            f"wav2vec2 models read one waveform [1, samples] per example, not {shape}; "
            "set data.max_segment: 0 and data.audio_feature: waveform (or auto)"
        )
    if spec.sample_rate != SAMPLE_RATE:
        raise ConfigError(
            f"wav2vec2 reads {SAMPLE_RATE} Hz audio (its conv strides and weights assume it); "
            f"set data.sample_rate: {SAMPLE_RATE} (now {spec.sample_rate})"
        )


def _check_options(options: EncoderOptions) -> None:
    for name, value in options.sizes().items():
        if (value[0] if isinstance(value, list) else value) < (0 if name == "num_hidden_layers" else 1):
            raise ConfigError(f"wav2vec2 size '{name}' must be positive, got {value}")
    for name in ("layerdrop", "mask_time_prob"):
        if not 0.0 <= getattr(options, name) < 1.0:
            raise ConfigError(f"model_args.{name} must be in [0, 1), got {getattr(options, name)}")
    if options.pretrained and set(options.sizes()) - {"num_hidden_layers"}:
        raise ConfigError(
            "with model_args.pretrained the checkpoint sets hidden_size, num_heads, intermediate_size "
            "and conv_channels; only num_layers may be given (to keep the first layers)"
        )


def _check_shape(config) -> None:
    if config.hidden_size % config.num_attention_heads:
        raise ConfigError(
            f"model_args.hidden_size ({config.hidden_size}) must be divisible by num_heads "
            f"({config.num_attention_heads})"
        )
    groups = config.num_conv_pos_embedding_groups
    if config.hidden_size % groups:
        raise ConfigError(
            f"model_args.hidden_size ({config.hidden_size}) must be divisible by {groups}, "
            "the groups of wav2vec2's convolutional position embedding"
        )


def _load(model_class: type, options: EncoderOptions, overrides: dict) -> nn.Module:
    """From a directory or the local HF cache only (local_files_only: offline machines stay
    offline, and a typo never turns into a download)."""
    from transformers import Wav2Vec2Config

    where = options.pretrained
    try:
        config = Wav2Vec2Config.from_pretrained(where, local_files_only=True, **overrides)
    except OSError:
        raise ConfigError(
            f"model_args.pretrained '{where}': no wav2vec2 checkpoint there, nor in the local Hugging "
            "Face cache (nothing is downloaded); give a directory written by save_pretrained"
        ) from None
    if config.model_type != "wav2vec2":
        raise ConfigError(f"model_args.pretrained '{where}' is a {config.model_type} checkpoint, not wav2vec2")
    layers = options.num_layers
    if layers is not None:
        if layers > config.num_hidden_layers:
            raise ConfigError(f"model_args.num_layers {layers} > the {config.num_hidden_layers} layers of '{where}'")
        config.num_hidden_layers = layers  # keeps the first `layers` transformer layers
    _check_shape(config)
    # A classification checkpoint made for another number of classes gets a fresh classifier.
    mismatched = "num_labels" in overrides
    try:
        return model_class.from_pretrained(
            where, config=config, local_files_only=True, dtype=torch.float32, ignore_mismatched_sizes=mismatched
        )
    except OSError as exc:
        raise ConfigError(f"model_args.pretrained '{where}': {str(exc).splitlines()[0]}") from None


# Which wav2vec2 tensor a head reads. hidden: the transformer's output (after the positional
# convolution and layer norm even with num_layers 0); projection: the feature projection's
# 768-d output (SpecAugment-masked while training), what emotions-classify's Wav2Vec2Fn read;
# extract_features: the conv encoder's layer-normed 512-d features, what its Wav2Vec2Cnn read.
FeatureSource = Literal["hidden", "projection", "extract_features"]


def encoder_features(encoder: nn.Module, waveform: torch.Tensor, source: FeatureSource) -> torch.Tensor:
    """[B, frames, width] from a Wav2Vec2Model; the transformer runs only for `hidden`."""
    if source == "hidden":
        return encoder(waveform).last_hidden_state
    conv = encoder.feature_extractor(waveform).transpose(1, 2)
    projected, normed = encoder.feature_projection(conv)
    if source == "extract_features":
        return normed
    return encoder._mask_hidden_states(projected)


def feature_width(config, source: FeatureSource) -> int:
    return config.conv_dim[-1] if source == "extract_features" else config.hidden_size
