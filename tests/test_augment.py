"""The augment: section's transforms, one by one: shapes and dtypes kept, labels unchanged
(mixup and cutmix add the partner's label and its weight, as documented), the same draws under
the same seed, and nothing but the features on val and test."""

from __future__ import annotations

import json

import pytest
import torch

from avbench.augment import Pipeline, build_pipeline
from avbench.augment.batch import mix_batch
from avbench.augment.channel import channel_responses, coloured_noise
from avbench.augment.normalise import apply_statistics, clip_cmvn, dataset_statistics
from avbench.augment.spectrogram import augment_spectrogram
from avbench.augment.video import augment_video
from avbench.augment.waveform import augment_waveform
from avbench.catalog import load_experiment
from avbench.config import ConfigError
from avbench.config_augment import AugmentConfig
from avbench.train.heads import batch_loss, classification_loss

RATE = 8000
WAVEFORM = {
    "gain": {"gain_db": 6},
    "noise": {"noise_p": 1.0, "noise_snr_db": 0},
    "background": {"noise_p": 1.0, "mix_background": True},
    "shift": {"time_shift": 0.2},
    "speed": {"speed": 0.2},
    "pitch": {"pitch_semitones": 3},
    "octave": {"pitch_semitones": 12, "pitch_p": 0.5},
    "reverb": {"reverb_p": 1.0},
    "channel": {"eq_p": 1.0},
    "pink": {"noise_p": 1.0, "noise_colour": "pink"},
    "coloured": {"noise_p": 1.0, "noise_colour": "random"},
}
SPECTROGRAM = {"freq": {"freq_masks": 2}, "time": {"time_masks": 2}, "warp": {"time_warp": 4}}
VIDEO = {
    "crop": {"video_crop_px": 4},
    "flip": {"video_flip": 1.0},
    "rotate": {"video_rotate_deg": 30},
    "scale": {"video_scale_min": 0.8, "video_scale_max": 1.4},
    "color": {"video_color": 0.3},
    "blur": {"video_blur_p": 1.0},
}


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def waves(*shape) -> torch.Tensor:
    t = torch.arange(shape[-1]) / RATE
    tones = torch.sin(2 * torch.pi * 300 * t) * torch.linspace(0.2, 1.0, shape[0]).view(-1, *[1] * (len(shape) - 1))
    return tones.expand(shape).contiguous()


@pytest.mark.parametrize("shape", [(4, 1, 4000), (3, 2, 1, 4000)], ids=["clips", "segments"])
@pytest.mark.parametrize("name", list(WAVEFORM))
def test_waveform_transforms_keep_shape_dtype_and_repeat_under_the_seed(name, shape):
    cfg, batch = AugmentConfig(**WAVEFORM[name]), waves(*shape)
    first = augment_waveform(batch, cfg, RATE, generator(1))
    assert first.shape == batch.shape and first.dtype == batch.dtype and torch.isfinite(first).all()
    assert torch.equal(first, augment_waveform(batch, cfg, RATE, generator(1)))
    changed = [not torch.equal(augment_waveform(batch, cfg, RATE, generator(seed)), batch) for seed in range(4)]
    assert any(changed), f"{name} never changed the batch"


def test_noise_lands_at_the_drawn_snr():
    batch = waves(8, 1, 4000)
    noisy = augment_waveform(batch, AugmentConfig(noise_p=1.0, noise_snr_db=10), RATE, generator())
    snr = 10 * torch.log10(batch.pow(2).mean(-1) / (noisy - batch).pow(2).mean(-1))
    assert ((snr > 9.5) & (snr < 30.5)).all()


def _band_power(wave: torch.Tensor, low: float, high: float) -> torch.Tensor:
    spectrum = torch.fft.rfft(wave.double()).abs().pow(2)
    freqs = torch.fft.rfftfreq(wave.shape[-1], 1 / RATE)
    return spectrum[..., (freqs >= low) & (freqs < high)].mean(-1)


@pytest.mark.parametrize("colour, slope", [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_noise_colours_fall_off_as_their_name_says(colour, slope):
    noise = coloured_noise(torch.Size((16, 1, 8000)), colour, RATE, generator())
    assert noise.shape == (16, 1, 8000) and torch.allclose(noise.pow(2).mean(-1), torch.ones(16, 1), atol=1e-4)
    low, high = _band_power(noise, 100, 200).mean(), _band_power(noise, 1600, 3200).mean()
    measured = float(torch.log2(high / low) / 4)  # power per octave, over the 4 octaves between the bands
    assert measured == pytest.approx(slope, abs=0.25)


def test_random_colour_draws_each_clip_its_own():
    noise = coloured_noise(torch.Size((32, 1, 8000)), "random", RATE, generator(4))
    tilt = torch.log2(_band_power(noise, 1600, 3200) / _band_power(noise, 100, 200)).flatten() / 4
    assert (tilt > -0.3).any() and (tilt < -1.7).any() and ((tilt > -1.3) & (tilt < -0.7)).any()


def test_random_channels_cut_or_shape_the_spectrum_and_keep_the_loudness():
    responses = channel_responses(64, 8192, RATE, generator(2))
    assert responses.shape == (64, 1, 4097) and torch.isfinite(responses).all()
    freqs = torch.fft.rfftfreq(8192, 1 / RATE)
    top, bottom = responses[..., freqs > 3500].mean(-1), responses[..., freqs < 40].mean(-1)
    assert (top < 0.3).any() and (bottom < 0.3).any()  # low-pass and high-pass edges both drawn
    peaked = (responses.amax(-1) > 1.5).any() or (responses.amin(-1) < 0.6).any()
    assert peaked
    batch = torch.randn(8, 1, 4000, generator=generator(9)) * 0.1
    out = augment_waveform(batch, AugmentConfig(eq_p=1.0), RATE, generator(1))
    assert torch.allclose(out.pow(2).mean(-1), batch.pow(2).mean(-1), rtol=1e-3)
    assert not torch.allclose(_band_power(out, 3000, 4000), _band_power(batch, 3000, 4000), rtol=0.2)


def test_an_octave_shift_moves_a_tone_an_octave_and_pitch_p_leaves_some_batches_alone():
    tone = waves(2, 1, 8000)
    cfg = AugmentConfig(pitch_semitones=12, pitch_p=1.0)
    peaks = set()
    for seed in range(12):
        out = augment_waveform(tone, cfg, RATE, generator(seed))
        spectrum = torch.fft.rfft(out[0, 0].double()).abs()
        peaks.add(round(float(torch.fft.rfftfreq(8000, 1 / RATE)[spectrum.argmax()]) / 300, 1))
    assert max(peaks) >= 1.5 and min(peaks) <= 0.67  # beyond ±7 semitones of the 300 Hz tone, both ways
    sometimes = AugmentConfig(pitch_semitones=12, pitch_p=0.3)
    untouched = [torch.equal(augment_waveform(tone, sometimes, RATE, generator(s)), tone) for s in range(20)]
    assert 3 <= sum(untouched) <= 19


@pytest.mark.parametrize("name", list(SPECTROGRAM))
def test_specaugment_keeps_shape_and_masks_within_bounds(name):
    image = torch.randn(4, 1, 32, 50)
    cfg = AugmentConfig(**SPECTROGRAM[name], freq_mask_width=6, time_mask_width=10)
    out = augment_spectrogram(image, cfg, generator(3))
    assert out.shape == image.shape and out.dtype == image.dtype
    assert torch.equal(out, augment_spectrogram(image, cfg, generator(3)))
    assert not torch.equal(out, image)
    if name == "freq":  # masked rows are constant across time and at most 2 × 6 rows wide
        constant = (out == out[..., :1]).all(-1).sum(-1)
        assert (constant <= 12).all() and constant.sum() > 0


@pytest.mark.parametrize("name", list(VIDEO))
def test_video_transforms_keep_shape_and_repeat_under_the_seed(name):
    video = torch.randn(2, 3, 3, 16, 16)
    cfg = AugmentConfig(**VIDEO[name])
    out = augment_video(video, cfg, generator(5))
    assert out.shape == video.shape and out.dtype == video.dtype and torch.isfinite(out).all()
    assert torch.equal(out, augment_video(video, cfg, generator(5)))
    assert not torch.equal(out, video)


def test_flip_mirrors_every_frame():
    video = torch.randn(2, 3, 3, 8, 8)
    assert torch.allclose(augment_video(video, AugmentConfig(video_flip=1.0), generator()), video.flip(-1), atol=1e-5)


def test_mixup_blends_inputs_with_one_weight_and_keeps_the_labels():
    batch = {"audio": torch.randn(6, 1, 8, 10), "video": torch.randn(6, 2, 3, 4, 4), "label": torch.arange(6)}
    mixed = mix_batch(batch, AugmentConfig(mixup_alpha=0.4), generator())
    weight, partner = float(mixed["mix_lambda"]), mixed["mix_label"]
    assert torch.equal(mixed["label"], batch["label"]) and sorted(partner.tolist()) == list(range(6))
    for name in ("audio", "video"):
        expected = weight * batch[name] + (1 - weight) * batch[name][partner]
        assert torch.allclose(mixed[name], expected)


def test_cutmix_pastes_the_partners_span_and_weighs_by_the_share_kept():
    audio = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 2, 20).contiguous()
    batch = {"audio": audio, "label": torch.arange(4)}
    mixed = mix_batch(batch, AugmentConfig(cutmix_alpha=1.0), generator(2))
    own = (mixed["audio"][:, 0, 0] == batch["label"][:, None].float()).float().mean(-1)
    assert torch.allclose(
        own[mixed["mix_label"] != batch["label"]], mixed["mix_lambda"].expand(4)[mixed["mix_label"] != batch["label"]]
    )


def test_the_mixed_loss_is_the_documented_blend():
    logits, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    partner = torch.tensor([1, 2, 0, 0])
    batch = {"label": labels, "mix_label": partner, "mix_lambda": torch.tensor(0.3)}
    expected = 0.3 * classification_loss(logits, labels) + 0.7 * classification_loss(logits, partner)
    assert torch.isclose(batch_loss(logits, batch, {}), expected)
    smoothed = batch_loss(logits, {"label": labels}, {}, smoothing=0.1)
    assert torch.isclose(smoothed, torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1))


def test_normalisation_per_clip_and_with_training_statistics():
    image = 3 + 2 * torch.randn(4, 1, 8, 50)
    normal = clip_cmvn(image)
    assert torch.allclose(normal.mean(-1), torch.zeros(4, 1, 8), atol=1e-5)
    stats = dataset_statistics([image[:2], image[2:]], image=True)
    assert stats["mean"].shape == (8,)
    applied = apply_statistics(image, stats, image=True)
    assert torch.allclose(applied.transpose(-2, -1).reshape(-1, 8).mean(0), torch.zeros(8), atol=1e-4)


def tiny_experiment(**augment):
    overrides = [f"augment.{k}={v}" for k, v in augment.items()]
    values = {"train.lr": 1e-3, "train.batch_size": 8, "train.optimizer": "adam"}
    loaded = load_experiment("spectrogram-cnn-cremad", preset="tiny", overrides=overrides)
    experiment = loaded.resolve({k: v for k, v in values.items() if k in loaded.searched})
    return experiment.model_copy(update={"data": experiment.data.model_copy(update={"audio_feature": "logmel"})})


def test_val_and_test_get_the_features_only():
    pipeline = build_pipeline(tiny_experiment(noise_p=1.0, freq_masks=2, mixup_alpha=0.4))
    assert isinstance(pipeline, Pipeline) and pipeline.logmel is not None
    batch = {"audio": waves(4, 1, 16000), "label": torch.arange(4)}
    evaluated, again = pipeline.eval(batch), pipeline.eval(batch)
    assert torch.equal(evaluated["audio"], again["audio"]) and set(evaluated) == {"audio", "label"}
    trained = pipeline.train(batch)
    assert trained["audio"].shape == evaluated["audio"].shape and "mix_lambda" in trained
    assert not torch.equal(trained["audio"], evaluated["audio"])


def test_clip_normalisation_is_refused_for_a_model_that_reads_band_statistics_only():
    from avbench.errors import InfeasibleConfig
    from avbench.preflight import check_feasible

    loaded = load_experiment("mel-stats-mlp-commands", preset="tiny", overrides=["augment.normalise=clip"])
    experiment = loaded.resolve({"train.lr": 1e-3, "train.weight_decay": 0.0, "model_args.dropout": 0.0})
    with pytest.raises(InfeasibleConfig, match="normalise: clip gives mel-stats-mlp the same band means"):
        check_feasible(experiment)
    check_feasible(experiment.model_copy(update={"augment": AugmentConfig(normalise="dataset")}))


def test_off_by_default_and_one_line_for_impossible_combinations():
    assert build_pipeline(tiny_experiment()) is None
    with pytest.raises(ConfigError, match="video transforms need 'video'"):
        build_pipeline(tiny_experiment(video_flip=0.5))
    experiment = tiny_experiment(freq_masks=1)
    waveform = experiment.model_copy(update={"data": experiment.data.model_copy(update={"audio_feature": "waveform"})})
    with pytest.raises(ConfigError, match="SpecAugment needs a spectrogram"):
        build_pipeline(waveform)


def test_an_augmented_run_records_what_ran_and_differs_from_a_plain_one(cli, workspace):
    common = ["--preset", "tiny", "--synthetic", "--no-wandb", "--set", "train.lr=3e-3"]
    common += [
        "--set",
        "train.batch_size=16",
        "--set",
        "train.optimizer=adam",
        "--set",
        "model_args.dropout=0.0",
        "--set",
        "train.weight_decay=0",
    ]
    cli("run", "mel-stats-mlp-cremad", *common)
    cli("run", "mel-stats-mlp-cremad", *common, "--set", "augment.gain_db=6", "--set", "augment.time_masks=2")
    records = sorted(
        (json.loads(p.read_text()) for p in (workspace / "results" / "runs").rglob("record.json")),
        key=lambda r: bool(r["augment"]),
    )
    plain, augmented = records
    assert plain["augment"] == {} and augmented["augment"]["gain_db"] == 6.0
    assert augmented["augment"]["audio_input"].startswith("waveform cached")
    assert plain["val"]["loss"] != augmented["val"]["loss"]
    assert augmented["status"] == "completed" and augmented["latency_ms"] > 0  # timed on the in-batch log-mel


def test_the_other_corpus_channel_is_band_limited_and_keeps_the_clip():
    import numpy as np

    from avbench.tasks import synth, synth_shift

    rng = np.random.default_rng(0)
    wave = rng.standard_normal(16000).astype(np.float32) * 0.1
    shifted = synth_shift.through_other_channel(wave, np.random.default_rng(1), 16000)
    assert shifted.shape == wave.shape and shifted.dtype == np.float32
    np.testing.assert_array_equal(shifted, synth_shift.through_other_channel(wave, np.random.default_rng(1), 16000))
    spectrum = np.abs(np.fft.rfft(shifted)) ** 2
    freqs = np.fft.rfftfreq(len(shifted), 1 / 16000)
    assert spectrum[(freqs > 5000)].mean() < 0.01 * spectrum[(freqs > 800) & (freqs < 3000)].mean()
    speaker = synth.speaker_profile(np.random.default_rng(3))
    assert synth_shift.shifted_speaker(speaker).f0 == pytest.approx(speaker.f0 * synth_shift.SHIFT_F0_SCALE)


def test_a_stand_in_without_a_domain_shift_says_so_in_one_line(cli):
    result = cli("data", "synth", "cremad", "--size", "tiny", "--domain-shift", "--out", "x", expect=1)
    assert "no domain-shift option" in result.output and "commands" in result.output
