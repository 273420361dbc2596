"""The input a Hugging Face audio checkpoint expects, made by its own feature extractor (raw
normalised waveform for wav2vec2-like models, AST's Kaldi filterbank, Whisper's log-mel),
computed once per file and setting and cached like log-mel (avbench.data.cache).

The extractor comes from the checkpoint's preprocessor_config.json when the checkpoint is on
this machine (a folder or the local HF cache; nothing is downloaded), else from the published
values in avbench.hf_checkpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avbench.data.audio import fit_length, load_audio
from avbench.errors import ConfigError
from avbench.hf_checkpoints import (
    EXTRACTORS,
    checkpoint_model_type,
    extractor_overrides,
    local_checkpoint,
    published_for,
)


def build_feature_extractor(name: str, config_overrides: dict[str, Any]):
    """The transformers feature extractor for checkpoint `name` whose config gets `config_overrides`."""
    import transformers

    local = local_checkpoint(name)
    if local is not None:
        model_type, config = local.model_type, {**local.config, **config_overrides}
    else:
        checkpoint_model_type(name)  # raises for an unknown name
        _, published = published_for(name)
        model_type, config = published.model_type, {**published.config, **config_overrides}
    if model_type not in EXTRACTORS:
        raise ConfigError(f"model_args.checkpoint '{name}' is a {model_type} model, which hf-audio does not read")
    class_name, defaults = EXTRACTORS[model_type]
    overrides = extractor_overrides(model_type, config)
    if local is not None:
        try:
            return transformers.AutoFeatureExtractor.from_pretrained(name, local_files_only=True, **overrides)
        except (OSError, ValueError):
            pass  # a checkpoint saved without its preprocessor_config.json: the family's published extractor
    values = {**defaults, **(published_for(name)[1].extractor if local is None else {}), **overrides}
    return getattr(transformers, class_name)(**values)


@dataclass(frozen=True)
class HFInputSettings:
    """What the cache keys a checkpoint's input on: the extractor's values and the clip."""

    extractor: dict[str, Any]
    clip_seconds: float
    shape: tuple[int, ...]  # one example's input, e.g. [samples], [frames, mels] or [mels, frames]

    def key_fields(self) -> dict:
        return {"feature": "hf", "version": 1, "extractor": self.extractor, "clip_seconds": self.clip_seconds}


class HFInputExtractor:
    """File → the checkpoint's model input (float16), from `clip_seconds` of audio at the
    extractor's rate, centre-cropped or padded like every other feature."""

    name = "hf"
    dtype = np.float16
    worker_start_s = 6.0  # importing transformers on top of torch

    def __init__(self, feature_extractor, clip_seconds: float):
        self.feature_extractor = feature_extractor
        self.rate = int(feature_extractor.sampling_rate)
        self.num_samples = int(round(self.rate * clip_seconds))
        shape = tuple(self._features(np.zeros(self.num_samples, dtype=np.float32)).shape)
        values = {k: v for k, v in feature_extractor.to_dict().items() if _is_plain(v)}
        self.settings = HFInputSettings(values, clip_seconds, shape)
        self.shape = shape

    def key_fields(self) -> dict:
        return self.settings.key_fields()

    def _features(self, clip: np.ndarray) -> np.ndarray:
        output = self.feature_extractor(clip, sampling_rate=self.rate, return_tensors="np")
        key = "input_features" if "input_features" in output else "input_values"
        return np.asarray(output[key][0])

    def __call__(self, path: Path) -> np.ndarray:
        clip = fit_length(load_audio(path, self.rate), self.num_samples)
        return self._features(clip.astype(np.float32)).astype(np.float16)


def _is_plain(value: Any) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True


def hf_input_extractor(sample_rate: int, clip_seconds: float, checkpoint: str, config: dict) -> HFInputExtractor:
    """The cached input of `checkpoint` (with `config` overrides) for clips of `clip_seconds`."""
    feature_extractor = build_feature_extractor(checkpoint, config)
    if int(feature_extractor.sampling_rate) != sample_rate:
        raise ConfigError(
            f"'{checkpoint}' reads {feature_extractor.sampling_rate} Hz audio; set data.sample_rate: "
            f"{feature_extractor.sampling_rate} (now {sample_rate})"
        )
    return HFInputExtractor(feature_extractor, clip_seconds)


def model_input_extractor(data, model_args: dict, cache_root=None):
    """hf-audio's registered input: its checkpoint's feature extractor at the data's rate and length."""
    checkpoint = model_args.get("checkpoint")
    if not checkpoint:
        raise ConfigError("hf-audio needs model_args.checkpoint: a folder, a hub id in the local cache, or a family")
    return hf_input_extractor(data.sample_rate, data.clip_seconds, checkpoint, model_args.get("config") or {})
