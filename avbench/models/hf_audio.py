"""Any Hugging Face audio classifier (`AutoModelForAudioClassification`): AST, wav2vec2, HuBERT,
WavLM, data2vec-audio, UniSpeech(-SAT), SEW(-D), Whisper's encoder.

`checkpoint` is a folder written by `save_pretrained`, a hub id already in the local HF cache
(nothing is downloaded, as with HF_HUB_OFFLINE=1), a published id avbench knows, or a family
name (avbench.hf_checkpoints). Without weights on this machine the architecture is built from
the config with random weights, and the run record's `weights` says so. The input is what the
checkpoint's feature extractor makes of each clip, cached by the data path
(avbench.data.hf_features).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from avbench.errors import ConfigError
from avbench.hf_checkpoints import TINY, WHISPER_FRAMES_PER_SECOND, published_for
from avbench.models._heads import Logits, output_width, split_heads
from avbench.registry import register_model
from avbench.spec import TaskSpec

Freeze = Literal["none", "feature_encoder", "encoder"]


class HFAudioClassifier(nn.Module):
    """batch["audio"] (the checkpoint's input features) → logits; also gives the encoder's hidden
    states per layer, which the probe reads."""

    def __init__(
        self, model: nn.Module, weights_source: str, head_lr: float | None, encoder_frozen: bool, spec: TaskSpec
    ):
        super().__init__()
        self.model = model
        self.spec = spec  # several heads: the checkpoint's classifier gives them side by side
        self.weights_source = weights_source
        self.head_lr = head_lr
        self.encoder_frozen = encoder_frozen

    def encoder(self) -> nn.Module:
        """The pretrained part: everything but the classification head."""
        return getattr(self.model, self.model.base_model_prefix, None) or self.model.encoder

    def _inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {self.model.main_input_name: batch["audio"].float()}

    def forward(self, batch: dict[str, torch.Tensor]) -> Logits:
        return split_heads(self.model(**self._inputs(batch)).logits, self.spec)

    def hidden_states(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """[B, T, D] after the input embedding and after every layer."""
        return self.encoder()(**self._inputs(batch), output_hidden_states=True).hidden_states

    def param_groups(self, lr: float) -> list[dict]:
        """The encoder at train.lr, the head at model_args.head_lr (train.lr when unset)."""
        encoder_ids = {id(p) for p in self.encoder().parameters()}
        trainable = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"name": "encoder", "params": [p for p in trainable if id(p) in encoder_ids], "lr": lr},
            {"name": "head", "params": [p for p in trainable if id(p) not in encoder_ids], "lr": self.head_lr or lr},
        ]
        return [group for group in groups if group["params"]]

    def train(self, mode: bool = True) -> HFAudioClassifier:
        # A frozen encoder is a fixed feature extractor: no dropout or masking while the head trains.
        super().train(mode)
        if self.encoder_frozen:
            self.encoder().eval()
        return self


def _required_checkpoint(checkpoint: str | None) -> str:
    if not checkpoint:
        raise ConfigError("hf-audio needs model_args.checkpoint: a folder, a hub id in the local cache, or a family")
    return checkpoint


@register_model(
    "hf-audio",
    tiny={"checkpoint": "wav2vec2", "config": TINY["wav2vec2"]},
    audio_input="hf",
    # A data-layer function, named rather than imported: models never import the data path.
    input_extractor="avbench.data.hf_features:model_input_extractor",
    skips_parameters=True,  # the speech families' layerdrop skips whole layers
)
def hf_audio(
    spec: TaskSpec,
    checkpoint: str | None = None,
    config: dict[str, Any] | None = None,
    freeze: Freeze = "feature_encoder",
    freeze_layers: int = 0,
    weighted_layers: bool = False,
    head_lr: float | None = None,
) -> nn.Module:
    """`config` overrides config values (e.g. num_hidden_layers to keep the first layers, or
    smaller sizes for a random-init CPU run). `freeze`: nothing, the feature encoder (the conv
    front end, AST's patch embedding, Whisper's convs) or the whole encoder (only the head
    trains); `freeze_layers` also freezes the N lowest transformer layers. `weighted_layers`:
    the head reads a learned softmax-weighted sum of every layer's hidden states (SUPERB's
    recipe). `head_lr`: the head's learning rate (train.lr when unset)."""
    checkpoint = _required_checkpoint(checkpoint)
    overrides = dict(config or {})
    if weighted_layers:
        overrides["use_weighted_layer_sum"] = True
    model, source = build_classifier(checkpoint, overrides, output_width(spec))
    if weighted_layers and not hasattr(model, "layer_weights"):
        raise ConfigError(
            f"'{checkpoint}' ({model.config.model_type}) has no layer-weighted head; "
            "use model: probe with layer: weighted"
        )
    classifier = HFAudioClassifier(model, source, head_lr, encoder_frozen=freeze == "encoder", spec=spec)
    apply_freezing(classifier, freeze, freeze_layers)
    return classifier


def build_classifier(checkpoint: str, overrides: dict[str, Any], num_labels: int) -> tuple[nn.Module, str]:
    """The classifier with local weights when present, else random init from its config."""
    from transformers import AutoConfig, AutoModelForAudioClassification

    from avbench.hf_checkpoints import checkpoint_model_type, local_checkpoint

    checkpoint_model_type(checkpoint)  # one line for an unknown name
    local = local_checkpoint(checkpoint)
    try:
        if local is not None:
            config = AutoConfig.from_pretrained(checkpoint, local_files_only=True, num_labels=num_labels, **overrides)
        else:
            name, published = published_for(checkpoint)
            config = AutoConfig.for_model(
                published.model_type, **{**published.config, **overrides, "num_labels": num_labels}
            )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model_args.config for '{checkpoint}': {str(exc).splitlines()[0]}") from None
    _check_config(checkpoint, config)
    if local is not None:
        try:
            model = AutoModelForAudioClassification.from_pretrained(
                checkpoint, config=config, local_files_only=True, ignore_mismatched_sizes=True, dtype=torch.float32
            )
            return model, f"loaded from {checkpoint}"
        except OSError:
            source = f"random init from the config of {checkpoint} (no weights on this machine)"
    else:
        known = "the published" if name in _published_ids() else "transformers' default"
        source = f"random init from {known} {name} config"
    if overrides:
        source += " (" + ", ".join(f"{k}={v}" for k, v in sorted(overrides.items())) + ")"
    try:
        return AutoModelForAudioClassification.from_config(config), source
    except ValueError as exc:  # e.g. an architecture transformers cannot classify audio with
        raise ConfigError(f"'{checkpoint}': {str(exc).splitlines()[0]}") from None


def _published_ids() -> set[str]:
    from avbench.hf_checkpoints import PUBLISHED

    return set(PUBLISHED)


def _check_config(checkpoint: str, config) -> None:
    if config.model_type == "whisper" and config.max_source_positions % WHISPER_FRAMES_PER_SECOND:
        raise ConfigError(
            f"'{checkpoint}': Whisper reads whole seconds of audio; max_source_positions must be a multiple of "
            f"{WHISPER_FRAMES_PER_SECOND} (now {config.max_source_positions})"
        )


def apply_freezing(classifier: HFAudioClassifier, freeze: Freeze, freeze_layers: int) -> None:
    """Turn off gradients as asked, and for parameters no step can reach (fixed sinusoidal
    positions, the mask embedding when masking is off)."""
    encoder = classifier.encoder()
    config = classifier.model.config
    for name, parameter in encoder.named_parameters():
        masking = getattr(config, "mask_time_prob", 0) > 0 or getattr(config, "mask_feature_prob", 0) > 0
        if (name == "masked_spec_embed" and not masking) or name == "embed_positions.weight":
            parameter.requires_grad_(False)
    layers = _layer_list(encoder)
    if freeze_layers < 0 or freeze_layers > len(layers):
        raise ConfigError(f"model_args.freeze_layers must be in 0..{len(layers)} (the encoder's layers)")
    if freeze == "encoder":
        encoder.requires_grad_(False)
        return
    if freeze == "feature_encoder" or freeze_layers:
        for module in _feature_encoder(encoder):
            module.requires_grad_(False)
    for layer in layers[:freeze_layers]:
        layer.requires_grad_(False)


def _feature_encoder(encoder: nn.Module) -> list[nn.Module]:
    """What turns the input into the first layer's tokens."""
    if hasattr(encoder, "feature_extractor"):  # the wav2vec2 family's conv front end
        return [encoder.feature_extractor]
    if hasattr(encoder, "conv1"):  # Whisper
        return [encoder.conv1, encoder.conv2]
    return [encoder.embeddings]  # AST's patch and position embeddings


def _layer_list(encoder: nn.Module) -> nn.ModuleList:
    """The transformer layers: the longest ModuleList named layer(s)."""
    lists = [
        m for n, m in encoder.named_modules() if isinstance(m, nn.ModuleList) and n.split(".")[-1].startswith("layer")
    ]
    return max(lists, key=len)
