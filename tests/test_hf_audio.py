"""hf-audio: every architecture family transformers classifies audio with, at a tiny size and
with no downloads; local checkpoints load, absent weights say so, and the input is what the
checkpoint's own feature extractor makes of a real file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avbench.config import DataConfig
from avbench.errors import ConfigError
from avbench.hf_checkpoints import FAMILIES, TINY
from avbench.registry import MODELS
from avbench.spec import TaskSpec
from tests.media import tone, write_wav

HF_AUDIO = MODELS.get("hf-audio")
ONE_SECOND = DataConfig(clip_seconds=1.0)


def build(family: str, num_classes: int = 4, **args):
    """The tiny model of a family and the shape of its input."""
    extractor = HF_AUDIO.input_extractor(ONE_SECOND, {"checkpoint": family, "config": TINY[family]})
    spec = TaskSpec(num_classes=num_classes, shapes={"audio": extractor.shape})
    return HF_AUDIO(spec, checkpoint=family, config=TINY[family], **args), extractor.shape


def test_every_family_has_a_tiny_config():
    assert set(TINY) == set(FAMILIES)


@pytest.mark.parametrize("family", sorted(TINY))
def test_family_forward_backward(family):
    torch.manual_seed(0)
    model, shape = build(family)
    model.train()
    logits = model({"audio": torch.randn(2, *shape)})
    assert logits.shape == (2, 4)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3])).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen, "the feature encoder is frozen by default"
    states = model.hidden_states({"audio": torch.randn(2, *shape)})
    assert len(states) == model.model.config.num_hidden_layers + 1 and states[-1].shape[0] == 2


def test_weighted_layers_learn_their_weights_and_ast_refuses():
    model, shape = build("wavlm", weighted_layers=True)
    model.train()
    model({"audio": torch.randn(2, *shape)}).sum().backward()
    assert model.model.layer_weights.grad is not None
    with pytest.raises(ConfigError, match="no layer-weighted head"):
        build("ast", weighted_layers=True)


def test_freezing_and_parameter_groups():
    model, _ = build("hubert", freeze="encoder", head_lr=0.5)
    groups = model.param_groups(0.01)
    assert [(g["name"], g["lr"]) for g in groups] == [("head", 0.5)]
    model.train()
    assert not model.encoder().training  # a frozen encoder is a fixed feature extractor
    model, _ = build("hubert", freeze="none", freeze_layers=1)
    layer = model.encoder().encoder.layers[0]
    assert not any(p.requires_grad for p in layer.parameters())
    assert not any(p.requires_grad for p in model.encoder().feature_extractor.parameters())
    assert {g["name"] for g in model.param_groups(0.01)} == {"encoder", "head"}
    with pytest.raises(ConfigError, match="freeze_layers must be in 0..1"):
        build("hubert", freeze_layers=2)


def test_local_checkpoint_loads_its_weights_and_a_config_alone_says_random(tmp_path):
    model, shape = build("wav2vec2", num_classes=3)
    model.model.save_pretrained(tmp_path / "full")
    spec = TaskSpec(num_classes=5, shapes={"audio": shape})
    loaded = HF_AUDIO(spec, checkpoint=str(tmp_path / "full"))
    assert loaded.weights_source == f"loaded from {tmp_path / 'full'}"
    assert loaded.model.classifier.out_features == 5  # a new head for this task's classes
    original = dict(model.model.wav2vec2.named_parameters())
    for name, parameter in loaded.model.wav2vec2.named_parameters():
        assert torch.equal(parameter, original[name]), name
    model.model.config.save_pretrained(tmp_path / "config-only")
    fresh = HF_AUDIO(spec, checkpoint=str(tmp_path / "config-only"))
    assert "random init from the config of" in fresh.weights_source and "no weights" in fresh.weights_source


def test_published_names_and_unknown_ones():
    spec_args = {"checkpoint": "openai/whisper-base"}
    extractor = HF_AUDIO.input_extractor(DataConfig(clip_seconds=2.0), spec_args)
    assert extractor.shape == (80, 3000)  # Whisper's 80 mel bins over its 30 s window
    with pytest.raises(ConfigError, match="not a folder, not in the local Hugging Face cache"):
        HF_AUDIO.input_extractor(ONE_SECOND, {"checkpoint": "nobody/no-such-model"})
    with pytest.raises(ConfigError, match="needs model_args.checkpoint"):
        HF_AUDIO.input_extractor(ONE_SECOND, {})
    with pytest.raises(ConfigError, match="reads 16000 Hz audio"):
        HF_AUDIO.input_extractor(DataConfig(sample_rate=22050), {"checkpoint": "hubert"})
    with pytest.raises(ConfigError, match="multiple of 50"):
        HF_AUDIO(TaskSpec(num_classes=2), checkpoint="whisper", config={**TINY["whisper"], "max_source_positions": 60})


def test_input_is_the_checkpoints_feature_extractor_on_a_real_file(tmp_path):
    path = write_wav(tmp_path / "a.wav", tone(1.5, 22050, freq=300.0), 22050)
    ast = HF_AUDIO.input_extractor(ONE_SECOND, {"checkpoint": "ast", "config": TINY["ast"]})
    features = ast(path)
    assert features.shape == (32, 16) and features.dtype == np.float16 and np.isfinite(features).all()
    wave = HF_AUDIO.input_extractor(ONE_SECOND, {"checkpoint": "wav2vec2"})(path)
    assert wave.shape == (16000,) and abs(float(wave.astype(np.float32).std()) - 1.0) < 0.01  # do_normalize
    raw = HF_AUDIO.input_extractor(ONE_SECOND, {"checkpoint": "hubert"})(path)
    assert abs(float(raw.astype(np.float32).std()) - 1.0) > 0.1  # HuBERT base's extractor does not normalise
    keys = {str(e.key_fields()) for e in (ast, HF_AUDIO.input_extractor(ONE_SECOND, {"checkpoint": "ast"}))}
    assert len(keys) == 2  # another extractor setting is another cache entry
