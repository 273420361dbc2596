"""A ViT (timm) on the log-mel image: emotions-classify's TransformerClassifier.

The seed built vit-pytorch's ViT on a square linear spectrogram (512×512); here the log-mel
image [n_mels, frames] is resized (bilinear) to `spectrogram_size` first, so the image the
patches tile is fixed whatever the clip length or mel count. Names map to the seed's:
patch_transformer_size → patch_size, transformer_depth → depth,
transformer_attantion_head_count → heads, layer_1_size → dim, layer_2_size → mlp_dim.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from avbench.errors import ConfigError, InfeasibleConfig
from avbench.models._heads import classifier
from avbench.models._options import flat_options
from avbench.registry import register_model
from avbench.spec import TaskSpec

# vit-pytorch (the seed's library) refused images cut into this many patches or fewer.
MIN_PATCHES = 16


def image_size(spectrogram_size: int | tuple[int, int]) -> tuple[int, int]:
    """(height, width): an int is a square image."""
    if isinstance(spectrogram_size, int):
        return spectrogram_size, spectrogram_size
    return int(spectrogram_size[0]), int(spectrogram_size[1])


def check_spectrogram_vit(
    spec: TaskSpec,
    *,
    spectrogram_size,
    patch_size: int,
    dim: int,
    heads: int,
    head_dim: int,
    depth: int,
    mlp_dim: int,
    **_,
) -> None:
    """Refuse what cannot be built, before any data is read: ConfigError for values that are
    wrong on their own, InfeasibleConfig for combinations (a sweep skips those untrained)."""
    if len(spec.shapes.get("audio", ())) != 3:
        raise ConfigError("spectrogram-vit reads one log-mel image per clip; set data.max_segment: 0")
    height, width = image_size(spectrogram_size)
    for name, value in (
        ("spectrogram_size", min(height, width)),
        ("patch_size", patch_size),
        ("dim", dim),
        ("heads", heads),
        ("depth", depth),
        ("mlp_dim", mlp_dim),
    ):
        if value <= 0:
            raise ConfigError(f"model_args.{name} must be positive (got {value})")
    if head_dim < 0:
        raise ConfigError(f"model_args.head_dim must be 0 (dim / heads) or positive (got {head_dim})")
    if height % patch_size or width % patch_size:
        raise InfeasibleConfig(f"spectrogram_size {height}x{width} is not divisible by patch_size {patch_size}")
    patches = (height // patch_size) * (width // patch_size)
    if patches <= MIN_PATCHES:
        raise InfeasibleConfig(
            f"spectrogram_size {height}x{width} with patch_size {patch_size} gives {patches} "
            f"patches; a ViT needs more than {MIN_PATCHES}"
        )
    if head_dim == 0 and dim % heads:
        raise InfeasibleConfig(f"dim {dim} is not divisible by heads {heads} (or set head_dim)")


def _attention_with_head_dim(head_dim: int) -> type[nn.Module]:
    """timm's Attention with a fixed per-head width (vit-pytorch's dim_head), independent of
    dim. A subclass, not a partial: timm checks the attention layer with issubclass."""
    from timm.layers import Attention

    class FixedHeadDimAttention(Attention):
        def __init__(self, dim: int, **kwargs):
            super().__init__(dim, attn_head_dim=head_dim, **kwargs)

    return FixedHeadDimAttention


class SpectrogramViT(nn.Module):
    def __init__(self, vit: nn.Module, size: tuple[int, int]):
        super().__init__()
        self.vit = vit
        self.size = size

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        mel = batch["audio"]  # [B, 1, mels, frames]
        if tuple(mel.shape[-2:]) != self.size:
            mel = F.interpolate(mel, size=self.size, mode="bilinear", align_corners=False)
        return self.vit(mel)


@dataclass(frozen=True)
class ViTShape:
    """The model_args that shape the ViT (what check_spectrogram_vit judges)."""

    spectrogram_size: int | tuple[int, int] = 224
    patch_size: int = 16
    depth: int = 4
    heads: int = 8
    dim: int = 256
    mlp_dim: int = 256
    head_dim: int = 0


@register_model(
    "spectrogram-vit",
    tiny={"spectrogram_size": [32, 64], "patch_size": 8, "depth": 1, "heads": 2, "dim": 32, "mlp_dim": 64},
    modalities=("audio",),
    check=check_spectrogram_vit,
    defaults={"model_args": {"spectrogram_size": [128, 256], "head_dim": 64}},  # every patch_size gives > 16 patches
    search={
        "model_args.patch_size": {"values": [8, 16, 32]},
        "model_args.depth": {"values": [2, 3, 4]},
        "model_args.heads": {"values": [2, 4, 8]},
        "model_args.dim": {"values": [64, 128, 256]},
        "model_args.mlp_dim": {"values": [128, 256, 512]},
    },
    presets={"cpu": {"model_args": {"spectrogram_size": [96, 192]}}},
)
@flat_options(vit=ViTShape)
def spectrogram_vit(
    spec: TaskSpec,
    vit: ViTShape = ViTShape(),
    dropout: float = 0.1,
    emb_dropout: float = 0.1,
) -> nn.Module:
    """`spectrogram_size`: the image the log-mel is resized to, an int (square) or [height,
    width]; it must be divisible by `patch_size` and give more than 16 patches. `head_dim` 0
    = dim / heads (timm's ViT; dim must be divisible by heads); a positive value gives every
    head that width whatever dim is, as vit-pytorch did (its default, 64, is what the seed
    ran). `dropout` acts in attention and MLP, `emb_dropout` after the position embedding,
    as in vit-pytorch."""
    from timm.models.vision_transformer import VisionTransformer

    check_spectrogram_vit(spec, **asdict(vit))
    size = image_size(vit.spectrogram_size)
    extra = {"attn_layer": _attention_with_head_dim(vit.head_dim)} if vit.head_dim else {}
    model = VisionTransformer(
        img_size=size,
        patch_size=vit.patch_size,
        in_chans=spec.shapes["audio"][0],
        num_classes=spec.num_classes,
        embed_dim=vit.dim,
        depth=vit.depth,
        num_heads=vit.heads,
        # timm takes the MLP width as a ratio and truncates dim * ratio; the half keeps float
        # rounding from landing one unit short of mlp_dim.
        mlp_ratio=(vit.mlp_dim + 0.5) / vit.dim,
        attn_drop_rate=dropout,
        proj_drop_rate=dropout,
        pos_drop_rate=emb_dropout,
        **extra,
    )
    assert model.blocks[0].mlp.fc1.out_features == vit.mlp_dim
    if spec.heads:
        model.head = classifier(vit.dim, spec)
    return SpectrogramViT(model, size)
