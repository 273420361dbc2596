"""The raw-waveform audio feature (wav2vec2, Perceiver) and how a run picks its audio feature."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from avbench.config import DataConfig, Experiment
from avbench.data.cache import FeatureCache
from avbench.data.dataset import ArrayDataset, prepare_data
from avbench.errors import ConfigError
from avbench.preflight import with_model_inputs
from tests.media import ListedTask

RATE = 16000


@pytest.fixture()
def tone(tmp_path):
    """1.5 s at 8 kHz: the waveform feature must resample it and centre-crop to the clip."""
    t = np.arange(12000) / 8000
    path = tmp_path / "tone.wav"
    sf.write(path, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000)
    return path


def test_waveform_rows_are_the_resampled_clip(tone, tmp_path):
    data = DataConfig(audio_feature="waveform", clip_seconds=1.0, sample_rate=RATE)
    task = ListedTask([(tone, None, 0, split) for split in ("train", "val", "test")])
    prepared = prepare_data(task, tmp_path, data, FeatureCache(tmp_path / "cache"))
    assert prepared.spec.shapes == {"audio": (1, RATE)}
    wave = ArrayDataset(prepared.splits["train"])[0]["audio"]
    assert wave.shape == (1, RATE) and wave.dtype == torch.float32
    assert abs(float(wave.abs().max()) - 0.5) < 0.02  # the signal, unnormalised
    spectrum = np.abs(np.fft.rfft(wave[0].numpy()))
    assert abs(int(spectrum.argmax()) - 440) <= 1  # 1 Hz bins over 1 s: still the 440 Hz tone


def test_waveform_segments_share_the_windows(tone, tmp_path):
    data = DataConfig(audio_feature="waveform", clip_seconds=1.5, max_segment=3, segment_seconds=0.5)
    task = ListedTask([(tone, None, 0, split) for split in ("train", "val", "test")])
    prepared = prepare_data(task, tmp_path, data, FeatureCache(tmp_path / "cache"))
    assert prepared.spec.shapes == {"audio": (3, 1, 8000)}
    assert ArrayDataset(prepared.splits["val"])[0]["audio"].shape == (3, 1, 8000)


def test_logmel_and_waveform_are_cached_apart(tone, tmp_path):
    task = ListedTask([(tone, None, 0, split) for split in ("train", "val", "test")])
    mel = prepare_data(task, tmp_path, DataConfig(audio_feature="logmel", n_mels=16), FeatureCache(tmp_path / "c"))
    wave = prepare_data(task, tmp_path, DataConfig(audio_feature="waveform"), FeatureCache(tmp_path / "c"))
    again = prepare_data(task, tmp_path, DataConfig(audio_feature="waveform"), FeatureCache(tmp_path / "c"))
    assert mel.spec.shapes["audio"][1] == 16 and wave.spec.shapes["audio"] == (1, 32000)
    assert wave.cache["decoded"] == 1  # its own entry, not the log-mel's
    assert again.cache["decoded"] == 0 and again.cache["hits"] == 1


def test_auto_audio_feature_follows_the_model():
    experiment = Experiment(task="cremad", model="spectrogram-cnn")
    assert experiment.data.audio_feature == "auto"
    assert with_model_inputs(experiment).data.audio_feature == "logmel"
    wrong = Experiment(task="cremad", model="spectrogram-cnn", data={"audio_feature": "waveform"})
    with pytest.raises(ConfigError, match="reads audio as logmel"):
        with_model_inputs(wrong)
