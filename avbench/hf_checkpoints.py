"""Hugging Face audio checkpoints: the families `hf-audio` builds, the published configs it
builds them from when no weights are on this machine, and the feature extractor each expects.

One source of truth for both sides of a checkpoint: the model (avbench.models.hf_audio) takes
its architecture from here and the data path (avbench.data.hf_features) its input features, so
the two always agree. No torch, no transformers here.

The published values are the architecture fields of each checkpoint's config.json and
preprocessor_config.json on the Hugging Face hub; fields not written keep transformers'
defaults, which its documentation gives as those of the family's reference checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from avbench.errors import ConfigError

# Family name a user may write → transformers' model_type.
FAMILIES = {
    "ast": "audio-spectrogram-transformer",
    "wav2vec2": "wav2vec2",
    "hubert": "hubert",
    "wavlm": "wavlm",
    "data2vec-audio": "data2vec-audio",
    "unispeech": "unispeech",
    "unispeech-sat": "unispeech-sat",
    "sew": "sew",
    "sew-d": "sew-d",
    "whisper": "whisper",
}

# model_type → (feature extractor class, its published defaults).
_WAVEFORM = ("Wav2Vec2FeatureExtractor", {"sampling_rate": 16000, "do_normalize": True, "return_attention_mask": False})
EXTRACTORS: dict[str, tuple[str, dict[str, Any]]] = {
    "audio-spectrogram-transformer": (
        "ASTFeatureExtractor",
        {"sampling_rate": 16000, "num_mel_bins": 128, "max_length": 1024, "mean": -4.2677393, "std": 4.5689974},
    ),
    "whisper": ("WhisperFeatureExtractor", {"sampling_rate": 16000, "feature_size": 80, "chunk_length": 30}),
    **{family: _WAVEFORM for family in ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "unispeech", "unispeech-sat")},
    "sew": _WAVEFORM,
    "sew-d": _WAVEFORM,
}

_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
_LARGE = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096}
_STABLE = {"feat_extract_norm": "layer", "do_stable_layer_norm": True}


@dataclass(frozen=True)
class Published:
    """A checkpoint's architecture and input, as written on its hub page."""

    model_type: str
    config: dict[str, Any] = field(default_factory=dict)
    extractor: dict[str, Any] = field(default_factory=dict)  # beyond the family's EXTRACTORS defaults


PUBLISHED: dict[str, Published] = {
    "MIT/ast-finetuned-audioset-10-10-0.4593": Published(
        "audio-spectrogram-transformer",
        {**_BASE, "patch_size": 16, "frequency_stride": 10, "time_stride": 10, "max_length": 1024, "num_mel_bins": 128},
    ),
    "facebook/wav2vec2-base": Published(
        "wav2vec2", {**_BASE, "feat_extract_norm": "group", "conv_bias": False, "do_stable_layer_norm": False}
    ),
    "facebook/wav2vec2-base-960h": Published(
        "wav2vec2", {**_BASE, "feat_extract_norm": "group", "conv_bias": False, "do_stable_layer_norm": False}
    ),
    "facebook/hubert-base-ls960": Published(
        "hubert", {**_BASE, "feat_extract_norm": "group", "conv_bias": False}, {"do_normalize": False}
    ),
    "facebook/hubert-large-ll60k": Published("hubert", {**_LARGE, **_STABLE, "conv_bias": True}),
    "microsoft/wavlm-base-plus": Published(
        "wavlm", {**_BASE, "feat_extract_norm": "group", "conv_bias": False}, {"do_normalize": False}
    ),
    "microsoft/wavlm-large": Published("wavlm", {**_LARGE, **_STABLE, "conv_bias": False}),
    "facebook/data2vec-audio-base": Published("data2vec-audio", dict(_BASE)),
    "microsoft/unispeech-sat-base": Published(
        "unispeech-sat", {**_BASE, "feat_extract_norm": "group"}, {"do_normalize": False}
    ),
    "openai/whisper-tiny": Published(
        "whisper",
        {
            "d_model": 384,
            "encoder_layers": 4,
            "encoder_attention_heads": 6,
            "encoder_ffn_dim": 1536,
            "num_mel_bins": 80,
        },
    ),
    "openai/whisper-base": Published(
        "whisper",
        {
            "d_model": 512,
            "encoder_layers": 6,
            "encoder_attention_heads": 8,
            "encoder_ffn_dim": 2048,
            "num_mel_bins": 80,
        },
    ),
    "openai/whisper-small": Published(
        "whisper",
        {
            "d_model": 768,
            "encoder_layers": 12,
            "encoder_attention_heads": 12,
            "encoder_ffn_dim": 3072,
            "num_mel_bins": 80,
        },
    ),
}

# The checkpoint a bare family name stands for (families without one use transformers' defaults).
FAMILY_CHECKPOINT = {
    "ast": "MIT/ast-finetuned-audioset-10-10-0.4593",
    "wav2vec2": "facebook/wav2vec2-base",
    "hubert": "facebook/hubert-base-ls960",
    "wavlm": "microsoft/wavlm-base-plus",
    "data2vec-audio": "facebook/data2vec-audio-base",
    "unispeech-sat": "microsoft/unispeech-sat-base",
    "whisper": "openai/whisper-base",
}

# Tiny configs per family (tests on a CPU, no downloads): one layer of width 32.
_TINY_SPEECH = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "conv_dim": [16] * 7,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    "layerdrop": 0.0,
}
_TINY_SEW = {**_TINY_SPEECH, "conv_dim": [16] * 13}
TINY: dict[str, dict[str, Any]] = {
    "ast": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    | {"num_mel_bins": 16, "max_length": 32},
    "wav2vec2": _TINY_SPEECH,
    "hubert": _TINY_SPEECH,
    "wavlm": {**_TINY_SPEECH, "num_buckets": 32, "max_bucket_distance": 100},
    "data2vec-audio": {**_TINY_SPEECH, "num_conv_pos_embeddings": 5},
    "unispeech": _TINY_SPEECH,
    "unispeech-sat": _TINY_SPEECH,
    "sew": _TINY_SEW,
    "sew-d": {**_TINY_SEW, "position_buckets": 16, "max_position_embeddings": 64},
    "whisper": {"d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64}
    | {"decoder_layers": 1, "decoder_attention_heads": 2, "decoder_ffn_dim": 64, "num_mel_bins": 16}
    | {"max_source_positions": 50},
}

WHISPER_FRAMES_PER_SECOND = 50  # encoder positions per second: 100 mel frames, halved by its strided conv


def published_for(name: str) -> tuple[str, Published] | None:
    """(the checkpoint id, its published entry) for a known id or family name, else None."""
    checkpoint = FAMILY_CHECKPOINT.get(name, name)
    if checkpoint in PUBLISHED:
        return checkpoint, PUBLISHED[checkpoint]
    if name in FAMILIES:
        return name, Published(FAMILIES[name])
    return None


def extractor_overrides(model_type: str, config: dict[str, Any]) -> dict[str, Any]:
    """Feature-extractor values that follow from config values shaping the input (a smaller AST
    or Whisper reads fewer mel bins or frames), so model and features agree."""
    if model_type == "audio-spectrogram-transformer":
        return {key: config[key] for key in ("num_mel_bins", "max_length") if key in config}
    if model_type == "whisper":
        overrides = {}
        if "num_mel_bins" in config:
            overrides["feature_size"] = config["num_mel_bins"]
        positions = config.get("max_source_positions")
        if positions is not None:
            # Whisper's encoder takes exactly 2 x max_source_positions mel frames: a whole number of seconds.
            overrides["chunk_length"] = max(positions // WHISPER_FRAMES_PER_SECOND, 1)
        return overrides
    return {}


@dataclass(frozen=True)
class LocalCheckpoint:
    """A checkpoint whose config.json is on this machine."""

    name: str
    model_type: str
    config: dict[str, Any]


def local_checkpoint(name: str) -> LocalCheckpoint | None:
    """The checkpoint's config from a folder or the local HF cache (offline), or None."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError):  # not there (ValueError: not even a valid repo id)
        return None
    return LocalCheckpoint(name, config.model_type, config.to_dict())


def checkpoint_model_type(name: str) -> str:
    """transformers' model_type of a local or published checkpoint; one line when unknown."""
    local = local_checkpoint(name)
    if local is not None:
        return local.model_type
    published = published_for(name)
    if published is None:
        raise ConfigError(
            f"model_args.checkpoint '{name}': not a folder, not in the local Hugging Face cache (nothing is "
            "downloaded), and not a known checkpoint or family (see avbench/hf_checkpoints.py)"
        )
    return published[1].model_type
