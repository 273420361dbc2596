"""Frozen-encoder embeddings as a cached feature: the probe protocol's encode-once half.

An EmbeddingExtractor is a feature extractor like log-mel (avbench.data.cache's protocol): it
turns one audio file into one row, here the hidden states of a frozen encoder (any registered
audio model, e.g. an hf-audio checkpoint) at one layer or all of them, mean-pooled or kept
per frame. The cache keys the rows by encoder, its arguments and weights, layer, pooling and
the encoder's input settings, so the encoder runs once per file and setting and every trial of
a sweep reads the rows. It lives here, not in data/ or models/, because it joins the two: the
data path's input features feed a model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from avbench.config import DataConfig
from avbench.errors import ConfigError
from avbench.registry import MODELS

ENCODER_SEED = 0  # a random-init encoder is the same network in every process and every run


@dataclass(frozen=True)
class EmbeddingSettings:
    encoder: str
    encoder_args: dict[str, Any]
    layer: str | int  # "last", a hidden-state index (0 = the input embedding), or "weighted" (all)
    pool: str  # "mean" over frames, or "attention": frames kept for the probe's learned pooling
    input_key: dict[str, Any]  # the encoder's input feature settings (rate, clip, extractor)
    weights: list = field(default_factory=list)  # identity of local weight files
    shape: tuple[int, ...] = ()

    def key_fields(self) -> dict:
        return {
            "feature": "embedding",
            "version": 1,
            "encoder": self.encoder,
            "encoder_args": self.encoder_args,
            "layer": self.layer,
            "pool": self.pool,
            "input": self.input_key,
            "weights": self.weights,
            "seed": ENCODER_SEED,
        }


class EmbeddingExtractor:
    """File → float16 embedding row: [D] (one layer, mean), [L, D] (weighted, mean), [T, D] or
    [L, T, D] (attention pooling). The encoder is built on first use and never pickled."""

    name = "embedding"
    dtype = np.float16
    worker_start_s = 20.0  # a worker imports torch and transformers and builds the encoder

    def __init__(self, data: DataConfig, encoder: str, encoder_args: dict, layer, pool: str, cache_root: Path | None):
        factory = _encoder_factory(encoder)
        self.data = data
        self.encoder_name, self.encoder_args = encoder, dict(encoder_args)
        self.input = _encoder_input(factory, data, self.encoder_args)
        self.input_shape = tuple(getattr(self.input.settings, "shape", self.input.shape))  # with its channel axis
        self.cache_root = cache_root
        self._encoder = None
        self.weights_source = "unknown"
        self.settings = EmbeddingSettings(
            encoder, self.encoder_args, layer, pool, self.input.key_fields(), _weights_identity(self.encoder_args)
        )
        self.shape = self._known_shape() or self._measured_shape()
        self.settings = replace(self.settings, shape=self.shape)

    def key_fields(self) -> dict:
        return self.settings.key_fields()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_encoder": None}

    # ------------------------------------------------------------------ shape

    def _info_file(self) -> Path | None:
        if self.cache_root is None:
            return None
        from avbench.data.cache import settings_dir

        return settings_dir(self.cache_root, self) / "encoder.txt"  # not .json: the cache reads those as shards

    def _known_shape(self) -> tuple[int, ...] | None:
        """The row shape (and the encoder's weights) a previous run measured: a sweep's trials
        never build the encoder."""
        path = self._info_file()
        try:
            info = json.loads(path.read_text()) if path else None
        except (OSError, ValueError):
            return None
        if not isinstance(info, dict):
            return None
        self.weights_source = info.get("weights", self.weights_source)
        return tuple(info.get("shape", ())) or None

    def _measured_shape(self) -> tuple[int, ...]:
        """Built and run on torch's meta device (no memory, no compute: milliseconds for a 95M
        encoder), or for real when one of its ops has no meta kernel."""
        import torch

        try:
            with torch.device("meta"):
                states = self._pooled(self._new_encoder(), torch.zeros(1, *self.input_shape))
        except (RuntimeError, NotImplementedError):
            states = self._pooled(self._encoder or self._build(), torch.zeros(1, *self.input_shape))
        shape = tuple(states.shape[1:])
        path = self._info_file()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".encoder.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"shape": list(shape), "weights": self.weights_source}))
            os.replace(tmp, path)
        return shape

    # ------------------------------------------------------------------ encoding

    def _new_encoder(self):
        import torch

        from avbench.spec import TaskSpec

        factory = _encoder_factory(self.encoder_name)
        spec = TaskSpec(num_classes=2, sample_rate=self.data.sample_rate, shapes={"audio": self.input_shape})
        torch.manual_seed(ENCODER_SEED)
        try:
            model = factory(spec, **self.encoder_args)
        except TypeError as exc:
            raise ConfigError(f"model_args.encoder_args for '{self.encoder_name}': {exc}") from None
        source = getattr(model, "weights_source", "random init")
        self.weights_source = f"frozen {self.encoder_name} encoder, {source}"
        return model.eval().requires_grad_(False)

    def _build(self):
        import torch

        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self._encoder = self._new_encoder().to(device)
        return self._encoder

    def _pooled(self, encoder, audio):
        import torch

        with torch.inference_mode():
            device = next(encoder.parameters()).device
            states = layer_states(encoder, {"audio": audio.to(device)}, self.settings.layer)
            return states.mean(dim=-2) if self.settings.pool == "mean" else states

    def _embed(self, features: np.ndarray) -> np.ndarray:
        import torch

        audio = torch.from_numpy(np.asarray(features, dtype=np.float32).reshape(1, *self.input_shape))
        return self._pooled(self._encoder or self._build(), audio)[0].float().cpu().numpy()

    def __call__(self, path: Path) -> np.ndarray:
        return self._embed(self.input(path)).astype(np.float16)


def layer_states(encoder, batch: dict, layer: str | int):
    """[B, T, D] at one layer, or [B, L, T, D] for "weighted". Encoders that expose hidden states
    (hf-audio) give any layer; any other registered model gives what its last linear layer reads."""
    import torch

    if hasattr(encoder, "hidden_states"):
        states = encoder.hidden_states(batch)
        if layer == "weighted":
            return torch.stack(states, dim=1)
        index = -1 if layer == "last" else int(layer)
        if not -len(states) <= index < len(states):
            raise ConfigError(f"model_args.layer {layer}: the encoder has hidden states 0..{len(states) - 1}")
        return states[index]
    if layer != "last":
        raise ConfigError("this encoder gives no per-layer hidden states; use model_args.layer: last")
    captured = {}
    last_linear = [m for m in encoder.modules() if isinstance(m, torch.nn.Linear)][-1]
    handle = last_linear.register_forward_hook(lambda module, inputs, output: captured.setdefault("x", inputs[0]))
    try:
        encoder(batch)
    finally:
        handle.remove()
    states = captured["x"]
    return states if states.dim() == 3 else states.unsqueeze(1)  # one vector per clip: one "frame"


def _encoder_factory(name: str):
    factory = MODELS.get(name)
    if name == "probe" or factory.objective != "classification" or tuple(factory.modalities) != ("audio",):
        raise ConfigError(f"model_args.encoder '{name}' is not an audio encoder the probe can read")
    return factory


def _encoder_input(factory, data: DataConfig, encoder_args: dict):
    """The encoder's own input extractor, under the experiment's clip settings."""
    from avbench.data.dataset import feature_extractors

    if factory.input_extractor is not None:
        return factory.input_extractor(data, encoder_args, None)
    plain = data.model_copy(update={"audio_feature": factory.audio_input, "modalities": ["audio"]})
    return feature_extractors(plain)["audio"]


def _weights_identity(encoder_args: dict) -> list:
    """What names the encoder's weights on disk (a folder's files, a cached hub snapshot), so
    new weights under the same name are a new cache entry."""
    identity = []
    for key, value in sorted(encoder_args.items()):
        if not isinstance(value, str):
            continue
        path = Path(value).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file())
            identity.append([key, [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]])
        else:
            from huggingface_hub import try_to_load_from_cache

            try:
                cached = try_to_load_from_cache(value, "config.json") if "/" in value else None
            except ValueError:  # not a repo id
                cached = None
            if isinstance(cached, str):
                identity.append([key, cached])  # the path names the snapshot's commit
    return identity


def probe_embeddings(data, model_args: dict, cache_root=None) -> EmbeddingExtractor:
    """The probe's registered input: its frozen encoder's embeddings of every clip, cached."""
    return EmbeddingExtractor(
        data,
        model_args.get("encoder") or "hf-audio",
        model_args.get("encoder_args") or {},
        model_args.get("layer", "last"),
        model_args.get("pool", "mean"),
        cache_root,
    )
