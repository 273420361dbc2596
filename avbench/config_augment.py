"""The experiment's `augment:` section: transforms of the training split only, all off by
default (every field's default leaves the batch as it is). Each field may be `null`, so a
sweep searches it like any other; its default range is in avbench.sweep.space.

The transforms run after the feature cache, on the batch, on the training device
(avbench.augment): the cache keeps serving every trial whatever they draw.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

WAVEFORM_FIELDS = ("gain_db", "noise_p", "time_shift", "speed", "pitch_semitones", "reverb_p", "eq_p")
NOISE_COLOURS = ("white", "pink", "brown")  # power ∝ 1/f^0, 1/f, 1/f²
SPECTROGRAM_FIELDS = ("freq_masks", "time_masks", "time_warp")
VIDEO_FIELDS = ("video_crop_px", "video_flip", "video_rotate_deg", "video_color", "video_blur_p")


class AugmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # Waveform (audio read as samples; a log-mel model then gets its log-mel computed in the batch).
    gain_db: float = Field(0.0, ge=0, le=40)  # each clip scaled by a gain uniform in ±gain_db
    noise_p: float = Field(0.0, ge=0, le=1)  # share of clips that get additive noise
    noise_snr_db: float = Field(10.0, ge=-10, le=60)  # lowest SNR; each draw is uniform in [this, this + 20] dB
    noise_colour: Literal["white", "pink", "brown", "random"] = "white"  # random: one of the three per clip
    mix_background: bool = False  # the noise is another training clip of the batch, not coloured noise
    time_shift: float = Field(0.0, ge=0, le=0.5)  # circular shift by up to this share of the clip
    speed: float = Field(0.0, ge=0, le=0.5)  # each batch at speed 1 - speed, 1 or 1 + speed (resampled)
    pitch_semitones: int = Field(0, ge=0, le=12)  # a shifted batch moves by a whole number of semitones in ±this
    pitch_p: float = Field(1.0, ge=0, le=1)  # share of batches pitch-shifted (when pitch_semitones > 0)
    reverb_p: float = Field(0.0, ge=0, le=1)  # share of clips convolved with a synthetic room (RT60 0.1–0.6 s)
    # Share of clips through a random channel (microphone, codec, room EQ): a low-pass, high-pass
    # or band-pass edge, or a peaking boost/cut (avbench.augment.channel).
    eq_p: float = Field(0.0, ge=0, le=1)
    # Spectrogram (log-mel and the other spectrogram images): SpecAugment.
    freq_masks: int = Field(0, ge=0, le=8)
    freq_mask_width: int = Field(8, ge=1)  # widest frequency mask, in bins
    time_masks: int = Field(0, ge=0, le=8)
    time_mask_width: int = Field(20, ge=1)  # widest time mask, in frames
    time_warp: int = Field(0, ge=0)  # largest warp of the time axis, in frames
    # Batch: mixup and cutmix (Beta(α, α) mixing weights; both on: one of them per batch).
    mixup_alpha: float = Field(0.0, ge=0)
    cutmix_alpha: float = Field(0.0, ge=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    # Video (OpenAV's set), one draw per clip for all its frames.
    video_crop_px: int = Field(0, ge=0)  # random crop of up to this many pixels, resized back
    video_flip: float = Field(0.0, ge=0, le=1)  # horizontal flip probability
    video_rotate_deg: float = Field(0.0, ge=0, le=180)
    video_scale_min: float = Field(1.0, gt=0)
    video_scale_max: float = Field(1.0, gt=0)
    video_color: float = Field(0.0, ge=0, le=1)  # contrast and brightness jitter of up to this share
    video_blur_p: float = Field(0.0, ge=0, le=1)
    # Normalisation of the audio features, on every split: per clip (CMVN), or with per-bin
    # statistics of the training split, computed once and cached.
    normalise: Literal["none", "clip", "dataset"] = "none"

    @model_validator(mode="after")
    def _check_scale(self):
        if self.video_scale_min > self.video_scale_max:
            raise ValueError("augment.video_scale_min must not exceed augment.video_scale_max")
        return self

    def waveform_on(self) -> bool:
        return any(getattr(self, name) for name in WAVEFORM_FIELDS)

    def spectrogram_on(self) -> bool:
        return any(getattr(self, name) for name in SPECTROGRAM_FIELDS)

    def video_on(self) -> bool:
        return any(getattr(self, name) for name in VIDEO_FIELDS) or self.video_scale_min != self.video_scale_max

    def mixing_on(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    def active(self) -> dict:
        """The fields that differ from their defaults: what the run record lists."""
        defaults = AugmentConfig()
        return {name: value for name, value in self.model_dump().items() if getattr(defaults, name) != value}
