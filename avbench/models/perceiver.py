"""Perceiver IO (HF `PerceiverForMultimodalAutoencoding`, the deepmind/multimodal-perceiver
architecture) fine-tuned to classify audio + video, as the CREMA-D Perceiver seed did.

The published model autoencodes Kinetics clips: image patches, audio patches and a
700-way label go in, and any subset of image pixels, audio samples and the label comes out
through `subsampled_output_points`. For classification we keep the architecture and:
- feed the label slot zeros, which HF's preprocessor then replaces by its learned mask token
  (label masking probability 1.0): the target never reaches the encoder;
- decode the label query only (zero image and audio points), so no reconstruction is computed;
- replace the label classifier by a head for the task's classes (the seed's 512→256→6);
- cross-entropy on the label logits (fit() applies it).
"""

from __future__ import annotations

import torch
from torch import nn

from avbench.errors import ConfigError
from avbench.models._heads import classifier, split_heads
from avbench.registry import register_model
from avbench.spec import TaskSpec

PUBLISHED = "deepmind/multimodal-perceiver"
# Its configuration, in this model's argument names (HF's conversion script; image_size in pixels).
PUBLISHED_VALUES = {
    "num_latents": 784,
    "d_latents": 512,
    "d_model": 704,
    "num_blocks": 1,
    "num_self_attends_per_block": 8,
    "num_self_attention_heads": 8,
    "num_cross_attention_heads": 1,
    "samples_per_patch": 16,
    "qk_channels": None,
    "num_frames": 16,
    "image_size": 224,
    "audio_samples_per_frame": 1920,
    "initializer_range": 0.02,
}
# HF pads every modality to the widest one plus this many channels (hard-coded in
# PerceiverForMultimodalAutoencoding), so the published d_model 704 = 700 Kinetics labels + 4.
MIN_PADDING = 4
SPATIAL_DOWNSAMPLE = 4  # 4×4 space-to-depth image patches
# HF's Fourier position features: bands per axis (fixed in PerceiverForMultimodalAutoencoding).
AUDIO_BANDS, IMAGE_BANDS = 192, 32
# Arguments that shape weights: a checkpoint must agree with them (model_args name → config field).
ARCHITECTURE = {
    "num_latents": "num_latents",
    "d_latents": "d_latents",
    "num_blocks": "num_blocks",
    "num_self_attends_per_block": "num_self_attends_per_block",
    "num_self_attention_heads": "num_self_attention_heads",
    "num_cross_attention_heads": "num_cross_attention_heads",
    "samples_per_patch": "samples_per_patch",
    "qk_channels": "qk_channels",
}


class PerceiverClassifier(nn.Module):
    """Audio [B, 1, samples] + video [B, T, 3, H, W] → label logits [B, num_classes]."""

    def __init__(self, autoencoder: nn.Module, spec: TaskSpec, weights_source: str, normalize_audio: bool = False):
        super().__init__()
        self.autoencoder = autoencoder
        self.spec = spec
        self.weights_source = weights_source
        self.normalize_audio = normalize_audio
        self.label_width = autoencoder.config.num_labels

    def label_points_only(self, device: torch.device) -> dict[str, torch.Tensor | None]:
        """Decoder queries for no image pixel, no audio sample and the whole (one-point) label."""
        nothing = torch.empty(0, dtype=torch.long, device=device)
        return {"image": nothing, "audio": nothing, "label": None}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        video, audio = batch["video"], batch["audio"]
        if self.normalize_audio:
            # Each 16-sample patch is a handful of 704 input channels next to the Fourier position
            # features; quiet raw speech (std ~0.1) barely moves them, and a small model trained
            # from scratch then never learns to hear it.
            audio = (audio - audio.mean(-1, keepdim=True)) / (audio.std(-1, keepdim=True) + 1e-5)
        inputs = {
            "image": video,
            "audio": audio.reshape(audio.shape[0], -1, 1),
            # Uninformative by construction: zeros, and masked by HF's preprocessor on top.
            "label": video.new_zeros(video.shape[0], self.label_width),
        }
        out = self.autoencoder(inputs=inputs, subsampled_output_points=self.label_points_only(video.device))
        return split_heads(out.logits["label"], self.spec)


def check_inputs(
    spec: TaskSpec, num_frames: int, image_size: int, audio_samples_per_frame: int, samples_per_patch: int
) -> None:
    """The data must give exactly the frames, image size and samples the model is built for;
    each mismatch names the data field to change."""
    if image_size % SPATIAL_DOWNSAMPLE:
        raise ConfigError(
            f"perceiver: model_args.image_size {image_size} must be a multiple of "
            f"{SPATIAL_DOWNSAMPLE} (4×4 space-to-depth patches)"
        )
    if (num_frames * audio_samples_per_frame) % samples_per_patch:
        raise ConfigError(
            f"perceiver: num_frames × audio_samples_per_frame = {num_frames * audio_samples_per_frame} "
            f"must be a multiple of model_args.samples_per_patch {samples_per_patch}"
        )
    video, audio = spec.shapes.get("video"), spec.shapes.get("audio")
    if video is None or audio is None:
        raise ConfigError("perceiver reads audio + video: set data.modalities: [audio, video]")
    if len(video) != 4:
        raise ConfigError(
            f"perceiver: video must be [frames, 3, H, W] per clip, got {list(video)}; set data.max_segment: 0"
        )
    if video[0] != num_frames:
        raise ConfigError(
            f"perceiver: model_args.num_frames is {num_frames} but the video has {video[0]} "
            f"frames; set data.num_frames: {num_frames}"
        )
    if video[2:] != (image_size, image_size):
        raise ConfigError(
            f"perceiver: model_args.image_size is {image_size} but frames are "
            f"{video[2]}×{video[3]}; set data.image_size: {image_size}"
        )
    if len(audio) != 2 or audio[0] != 1:
        raise ConfigError(
            f"perceiver reads one raw waveform [1, samples] per clip, got {list(audio)}; "
            "set data.audio_feature: waveform and data.max_segment: 0"
        )
    wanted = num_frames * audio_samples_per_frame
    if audio[1] != wanted:
        per_frame = audio[1] / num_frames
        hint = (
            f" or model_args.audio_samples_per_frame: {int(per_frame)}"
            if per_frame.is_integer() and audio[1] % samples_per_patch == 0
            else ""
        )
        raise ConfigError(
            f"perceiver: the audio has {audio[1]} samples but num_frames × audio_samples_per_frame = "
            f"{num_frames} × {audio_samples_per_frame} = {wanted}; set data.clip_seconds: "
            f"{wanted / spec.sample_rate:g} (at data.sample_rate {spec.sample_rate}){hint}"
        )


def published_config(**args):
    """A PerceiverConfig with deepmind/multimodal-perceiver's values, changed where `args` say.
    HF's `image_size` is the patch grid (224 px / 4 = 56), as in the published config."""
    from transformers import PerceiverConfig

    d_model, image_size = args.pop("d_model"), args.pop("image_size")
    num_frames = args["num_frames"]
    return PerceiverConfig(
        **args,
        d_model=d_model,
        num_labels=d_model - MIN_PADDING,  # the label slot's width; the task's classes live in the head
        image_size=image_size // SPATIAL_DOWNSAMPLE,
        output_shape=[1, num_frames, image_size, image_size],
    )


def check_input_width(samples_per_patch: int, d_model: int) -> None:
    """HF builds the encoder's input width as the widest modality plus MIN_PADDING; the label
    slot can widen it to d_model, never narrow it."""
    audio = samples_per_patch + 2 * AUDIO_BANDS + 1
    image = 3 * SPATIAL_DOWNSAMPLE**2 + 3 * (2 * IMAGE_BANDS + 1)
    widest = max(audio, image)
    if d_model - MIN_PADDING < widest:
        raise ConfigError(
            f"perceiver: model_args.d_model {d_model} is below the widest input modality + "
            f"{MIN_PADDING} = {widest + MIN_PADDING} (audio patches of {samples_per_patch} samples "
            f"with {AUDIO_BANDS} Fourier bands); raise it"
        )


def load_pretrained(path: str, architecture: dict, attention_dropout: float):
    """From a local directory or the local HF cache only; nothing is downloaded. The checkpoint's
    frames/image/audio resolutions stay: they set its Fourier position features."""
    from transformers import PerceiverConfig, PerceiverForMultimodalAutoencoding

    try:
        config = PerceiverConfig.from_pretrained(path, local_files_only=True)
        fine_tuned = config.num_labels + MIN_PADDING != config.d_model
        if fine_tuned:
            # A classifier saved with its classes (name_labels): HF rebuilds the label slot at the
            # encoder's width; only the label slot's padding and classifier differ, and both are
            # replaced (the padding is always masked, the head is the task's).
            config.num_labels = config.d_model - MIN_PADDING
        config.attention_probs_dropout_prob = attention_dropout
        model = PerceiverForMultimodalAutoencoding.from_pretrained(
            path, config=config, local_files_only=True, ignore_mismatched_sizes=fine_tuned
        )
    except (OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"perceiver: cannot load model_args.pretrained '{path}' from disk or the local HF "
            f"cache (nothing is downloaded): {reason}"
        ) from None
    config = model.config
    wrong = [
        f"model_args.{arg} is {architecture[arg]} but the checkpoint has {getattr(config, field)}"
        for arg, field in ARCHITECTURE.items()
        if getattr(config, field) != architecture[arg]
    ]
    if config.d_model != architecture["d_model"]:
        wrong.append(f"model_args.d_model is {architecture['d_model']} but the checkpoint has {config.d_model}")
    if wrong:
        raise ConfigError(f"perceiver: {path}: " + "; ".join(wrong))
    return model


def adapt_for_classes(autoencoder: nn.Module, spec: TaskSpec, head_hidden: int, head_dropout: float) -> None:
    """New label classifier; freeze what label-only decoding can never use."""
    perceiver = autoencoder.perceiver
    if perceiver.input_preprocessor.mask_probs.get("label") != 1.0:
        raise RuntimeError("the label input must always be masked (HF changed PerceiverForMultimodalAutoencoding?)")
    width = autoencoder.config.output_num_channels
    # HF's postprocessor indexes the classifier's output as a tensor: several heads come
    # concatenated and are split in forward.
    head: nn.Module = (
        nn.Sequential(
            nn.Linear(width, head_hidden), nn.Dropout(head_dropout), classifier(head_hidden, spec, concatenated=True)
        )
        if head_hidden
        else classifier(width, spec, concatenated=True)
    )
    perceiver.output_postprocessor.modalities["label"].classifier = head
    # Image/audio reconstruction heads and query paddings only see zero decoded points, and the
    # label input's padding is always replaced by the mask token: frozen, they keep their
    # (pretrained) values and stay out of the optimizer.
    unused = [perceiver.output_postprocessor.modalities[m] for m in ("audio", "image")]
    unused += [perceiver.decoder.padding[m] for m in ("audio", "image")]
    unused.append(perceiver.input_preprocessor.padding["label"])
    for part in unused:
        part.requires_grad_(False)


def name_labels(autoencoder: nn.Module, class_names: tuple[str, ...]) -> None:
    """Write the task's classes into the HF config (label2id / id2label, so num_labels follows),
    as the seed did, and keep the encoder's input width: the narrower label slot gets a wider
    padding (frozen: the label input is always replaced by the mask token)."""
    config = autoencoder.config
    preprocessor = autoencoder.perceiver.input_preprocessor
    width = preprocessor.num_channels
    config.id2label = dict(enumerate(class_names))
    config.label2id = {name: index for index, name in config.id2label.items()}
    widest = max(p.num_channels for name, p in preprocessor.modalities.items() if name != "label")
    preprocessor.min_padding_size = width - max(widest, len(class_names))
    padding = torch.zeros(1, width - len(class_names), device=preprocessor.padding["label"].device)
    preprocessor.padding["label"] = nn.Parameter(padding, requires_grad=False)


def check_attention_widths(args: dict, *, d_latents: int, d_model: int) -> None:
    """Each attention's width (qk_channels, else its input width) splits evenly over its heads."""
    qk_channels = args["qk_channels"]
    attention_widths = {
        "num_self_attention_heads": qk_channels or d_latents,
        "num_cross_attention_heads": qk_channels or d_model,
    }
    for heads, width in attention_widths.items():
        if width % args[heads]:
            fallback = "d_latents" if "self" in heads else "d_model"
            raise ConfigError(
                f"perceiver: attention width {width} (model_args.qk_channels, else {fallback}) must "
                f"be divisible by model_args.{heads}"
            )


@register_model(
    "perceiver",
    tiny={
        "num_latents": 8,
        "d_latents": 32,
        "d_model": 408,
        "num_self_attends_per_block": 1,
        "num_self_attention_heads": 2,
        "num_frames": 2,
        "image_size": 16,
        "audio_samples_per_frame": 800,
        "head_hidden": 16,
    },
    modalities=("audio", "video"),
    audio_input="waveform",
    tiny_data={"num_frames": 2, "image_size": 16, "clip_seconds": 0.1, "sample_rate": 16000},
    # The deepmind/multimodal-perceiver inputs: 16 frames of 224 x 224 and 1920 samples per frame
    # (1.92 s at 16 kHz), frames scaled to [-1, 1].
    defaults={
        "data": {
            "sample_rate": 16000,
            "clip_seconds": 1.92,
            "num_frames": 16,
            "image_size": 224,
            "video_mean": [0.5, 0.5, 0.5],
            "video_std": [0.5, 0.5, 0.5],
        },
        "train": {"optimizer": "adam"},
    },
    search={"model_args.head_dropout": {"min": 0.1, "max": 0.5}},
    presets={
        "cpu": {
            "data": {"sample_rate": 8000, "clip_seconds": 1.0, "num_frames": 2, "image_size": 16},
            "model_args": {
                "num_latents": 32,
                "d_latents": 64,
                "d_model": 453,
                "num_self_attends_per_block": 2,
                "num_self_attention_heads": 4,
                "num_frames": 2,
                "image_size": 16,
                "audio_samples_per_frame": 4000,
                "samples_per_patch": 64,
                "qk_channels": 64,
                "normalize_audio": True,
                "head_hidden": 64,
            },
        },
    },
)
def perceiver(
    spec: TaskSpec,
    num_latents: int = 784,
    d_latents: int = 512,
    d_model: int = 704,
    num_blocks: int = 1,
    num_self_attends_per_block: int = 8,
    num_self_attention_heads: int = 8,
    num_cross_attention_heads: int = 1,
    num_frames: int = 16,
    image_size: int = 224,
    audio_samples_per_frame: int = 1920,
    samples_per_patch: int = 16,
    qk_channels: int = 0,
    attention_dropout: float = 0.1,
    initializer_range: float = 0.02,
    normalize_audio: bool = False,
    head_hidden: int = 256,
    head_dropout: float = 0.3,
    pretrained: str | None = None,
) -> nn.Module:
    """Defaults are the published configuration (16 frames of 224×224, 16 × 1920 audio samples,
    784 × 512 latents, 8 self-attention layers, raw audio, HF's 0.02 init). Scaling down:
    - `d_model` is the encoder's input width (the label slot gets d_model − 4 channels to match);
    - `qk_channels` 0 = HF's widths (the input width d_model in cross-attention); d_latents is far
      cheaper on a CPU;
    - small models trained from scratch need `initializer_range` ~0.05 and `normalize_audio`
      (each clip's waveform to zero mean, unit variance) to leave chance level in a few epochs.
    `pretrained` is a local directory or a model id already in the local HF cache; without it the
    weights are random. `head_hidden` 0 = a single linear classifier."""
    from transformers import PerceiverForMultimodalAutoencoding

    check_inputs(spec, num_frames, image_size, audio_samples_per_frame, samples_per_patch)
    check_input_width(samples_per_patch, d_model)
    args = {
        "num_latents": num_latents,
        "d_latents": d_latents,
        "num_blocks": num_blocks,
        "num_self_attends_per_block": num_self_attends_per_block,
        "num_self_attention_heads": num_self_attention_heads,
        "num_cross_attention_heads": num_cross_attention_heads,
        "samples_per_patch": samples_per_patch,
        "qk_channels": qk_channels or None,
    }
    check_attention_widths(args, d_latents=d_latents, d_model=d_model)
    if pretrained:
        autoencoder = load_pretrained(pretrained, {**args, "d_model": d_model}, attention_dropout)
        source = f"loaded from {pretrained}"
    else:
        requested = {
            **args,
            "d_model": d_model,
            "num_frames": num_frames,
            "image_size": image_size,
            "audio_samples_per_frame": audio_samples_per_frame,
            "initializer_range": initializer_range,
        }
        config = published_config(**requested, attention_probs_dropout_prob=attention_dropout)
        autoencoder = PerceiverForMultimodalAutoencoding(config)
        changed = [f"{key} {value}" for key, value in requested.items() if value != PUBLISHED_VALUES[key]]
        scaled = f" ({', '.join(changed)})" if changed else ""
        source = f"random init from the {PUBLISHED} config{scaled}"
    adapt_for_classes(autoencoder, spec, head_hidden, head_dropout)
    name_labels(autoencoder, spec.class_names or tuple(str(i) for i in range(spec.num_classes)))
    return PerceiverClassifier(autoencoder, spec, source, normalize_audio)
