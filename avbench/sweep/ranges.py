"""The built-in search ranges: what a searched (null) field gets when neither the sweep file
nor the model declares a range for it (`augment:` fields included)."""

from __future__ import annotations

from avbench.sweep.space import Param

# The augment: section's fields (avbench.config_augment), each off at one end of its range.
AUGMENT_RANGES: dict[str, Param] = {
    name: Param(name, kind, choices=tuple(choices), low=low, high=high)
    for name, kind, choices, low, high in (
        ("augment.gain_db", "float", (), 0.0, 12.0),
        ("augment.noise_p", "float", (), 0.0, 0.8),
        ("augment.noise_snr_db", "float", (), 0.0, 20.0),
        ("augment.noise_colour", "categorical", ("white", "pink", "brown", "random"), None, None),
        ("augment.mix_background", "categorical", (False, True), None, None),
        ("augment.time_shift", "float", (), 0.0, 0.3),
        ("augment.speed", "categorical", (0.0, 0.1, 0.2), None, None),
        ("augment.pitch_semitones", "int", (), 0, 12),
        ("augment.pitch_p", "float", (), 0.2, 1.0),
        ("augment.reverb_p", "float", (), 0.0, 0.5),
        ("augment.eq_p", "float", (), 0.0, 0.8),
        ("augment.freq_masks", "int", (), 0, 3),
        ("augment.freq_mask_width", "int", (), 2, 16),
        ("augment.time_masks", "int", (), 0, 3),
        ("augment.time_mask_width", "int", (), 5, 40),
        ("augment.time_warp", "int", (), 0, 10),
        ("augment.mixup_alpha", "float", (), 0.0, 0.5),
        ("augment.cutmix_alpha", "float", (), 0.0, 1.0),
        ("augment.label_smoothing", "float", (), 0.0, 0.2),
        ("augment.video_crop_px", "int", (), 0, 16),
        ("augment.video_flip", "categorical", (0.0, 0.5), None, None),
        ("augment.video_rotate_deg", "float", (), 0.0, 45.0),
        ("augment.video_scale_min", "float", (), 0.8, 1.0),
        ("augment.video_scale_max", "float", (), 1.0, 1.4),
        ("augment.video_color", "float", (), 0.0, 0.4),
        ("augment.video_blur_p", "float", (), 0.0, 0.5),
        ("augment.normalise", "categorical", ("none", "clip", "dataset"), None, None),
        ("data.train_crop", "categorical", ("centre", "random"), None, None),
    )
}

DEFAULT_RANGES: dict[str, Param] = {
    "train.lr": Param("train.lr", "float", low=1e-5, high=1e-2, log=True),
    "train.batch_size": Param("train.batch_size", "categorical", choices=(8, 16, 32, 64)),
    "train.optimizer": Param("train.optimizer", "categorical", choices=("adam", "adamw", "sgd", "lion")),
    "train.weight_decay": Param("train.weight_decay", "float", low=1e-6, high=1e-1, log=True),
    "train.momentum": Param("train.momentum", "float", low=0.8, high=0.99),
    "train.grad_accum": Param("train.grad_accum", "categorical", choices=(1, 2, 4)),
    "train.epochs": Param("train.epochs", "int", low=5, high=50),
    "model_args.drop_rate": Param("model_args.drop_rate", "float", low=0.0, high=0.5),
    **AUGMENT_RANGES,
}
