"""The wav2vec2 family beyond the registry-wide checks: freezing, wav2vec2-fn's two learning
rates reaching the optimizer, real weights from a local directory, input normalisation, and
one-line errors for audio the conv feature encoder cannot use."""

from __future__ import annotations

import inspect

import pytest
import torch

from avbench.config import TrainConfig
from avbench.errors import ConfigError
from avbench.models._wav2vec2_encoder import BASE_960H, TINY_ENCODER, EncoderOptions
from avbench.registry import MODELS
from avbench.spec import TaskSpec
from avbench.train.optim import build_optimizer

FAMILY = ("wav2vec2", "wav2vec2-fn", "wav2vec2-cnn")
SAMPLES = 16000  # one second: 49 frames


def spec(num_classes: int = 4, samples: int = SAMPLES, sample_rate: int = 16000) -> TaskSpec:
    return TaskSpec(num_classes=num_classes, sample_rate=sample_rate, shapes={"audio": (1, samples)})


def build(name: str, **args) -> torch.nn.Module:
    torch.manual_seed(0)
    factory = MODELS.get(name)
    return factory(spec(), **{**factory.tiny_args, **args})


def batch(size: int = 3) -> dict:
    generator = torch.Generator().manual_seed(1)
    return {"audio": 0.1 * torch.randn(size, 1, SAMPLES, generator=generator), "label": torch.tensor([0, 1, 2][:size])}


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    model.train()
    data = batch()
    torch.nn.functional.cross_entropy(model(data), data["label"]).backward()
    optimizer.step()


def feature_encoder(model: torch.nn.Module) -> torch.nn.Module:
    hf = getattr(model, "model", None) or model.encoder
    return getattr(hf, "wav2vec2", hf).feature_extractor


@pytest.mark.parametrize("name", FAMILY)
def test_frozen_feature_encoder_gets_no_gradient_and_does_not_move(name):
    model = build(name, freeze_feature_encoder=True)
    frozen = dict(feature_encoder(model).named_parameters())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    # weight decay would move any parameter the optimizer holds, gradient or not
    optimizer = build_optimizer(model.parameters(), TrainConfig(optimizer="adamw", lr=1e-2, weight_decay=0.1))
    train_step(model, optimizer)
    assert frozen and all(not p.requires_grad and p.grad is None for p in frozen.values())
    after = dict(model.named_parameters())
    frozen_names = {n for n, p in after.items() if any(p is q for q in frozen.values())}
    assert all(torch.equal(before[n], after[n]) for n in frozen_names)
    moved = [n for n, p in after.items() if n not in frozen_names and not torch.equal(before[n], p)]
    assert len(moved) == len(after) - len(frozen_names)  # everything else trains


def test_unfrozen_feature_encoder_trains():
    model = build("wav2vec2", freeze_feature_encoder=False)
    assert all(p.requires_grad for p in feature_encoder(model).parameters())


@pytest.mark.parametrize(("name", "head_lr"), [("wav2vec2-fn", "conv_lr"), ("wav2vec2-cnn", "cnn_lr")])
def test_two_learning_rates_reach_the_optimizer(name, head_lr):
    """wav2vec2 trains at train.lr (the seed's base_lr), the head at its own rate."""
    model = build(name, **{head_lr: 1e-2})
    groups = model.param_groups(1e-4)
    assert [(g["name"], g["lr"]) for g in groups] == [("base_lr", 1e-4), (head_lr, 1e-2)]
    grouped = [p for g in groups for p in g["params"]]
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(grouped) == len(trainable) and {id(p) for p in grouped} == {id(p) for p in trainable}

    optimizer = build_optimizer(groups, TrainConfig(optimizer="adam", lr=1e-4))
    assert [g["lr"] for g in optimizer.param_groups] == [1e-4, 1e-2]
    before = [[p.detach().clone() for p in g["params"]] for g in groups]
    train_step(model, optimizer)
    # Adam's first step moves each parameter by at most its group's lr (and by about that much).
    for group, old in zip(groups, before, strict=True):
        largest = max((p.detach() - o).abs().max().item() for p, o in zip(group["params"], old, strict=True))
        assert 0.5 * group["lr"] < largest <= 1.01 * group["lr"], group["name"]


def test_wav2vec2_fn_without_conv_lr_trains_everything_at_train_lr():
    groups = build("wav2vec2-fn").param_groups(3e-4)
    assert [g["lr"] for g in groups] == [3e-4, 3e-4]


def test_frozen_base_model_trains_only_the_head_and_stays_in_eval_mode():
    model = build("wav2vec2-fn", freeze_base_model=True, conv_lr=1e-3)
    assert [g["name"] for g in model.param_groups(1e-4)] == ["conv_lr"]
    assert not any(p.requires_grad for p in model.encoder.parameters())
    model.train()
    assert model.head.training and not any(m.training for m in model.encoder.modules())
    data = batch()
    with torch.no_grad():  # no dropout or SpecAugment: a frozen wav2vec2 gives the same features twice
        torch.testing.assert_close(model(data), model(data))


def test_trainable_wav2vec2_trains_in_training_mode():
    model = build("wav2vec2-cnn").train()
    assert model.encoder.training


def _save_tiny_checkpoint(directory, model_class_name: str, **config) -> torch.nn.Module:
    import transformers

    sizes = EncoderOptions(**{k: v for k, v in TINY_ENCODER.items() if k != "layerdrop"}).sizes()
    torch.manual_seed(3)
    model = getattr(transformers, model_class_name)(transformers.Wav2Vec2Config(**{**BASE_960H, **sizes, **config}))
    model.save_pretrained(directory)
    return model


@pytest.mark.parametrize("name", FAMILY)
def test_pretrained_loads_from_a_local_directory(name, tmp_path):
    saved = _save_tiny_checkpoint(tmp_path, "Wav2Vec2ForCTC")  # what facebook/wav2vec2-base-960h is
    model = MODELS.get(name)(spec(), pretrained=str(tmp_path))
    assert model.weights_source == f"loaded from {tmp_path}"
    loaded = dict(model.named_parameters())
    for key, value in saved.wav2vec2.state_dict().items():
        if key.startswith("encoder.pos_conv_embed"):
            continue  # weight-norm parametrisation: stored under other names
        match = [n for n in loaded if n.endswith(f"wav2vec2.{key}") or n == f"encoder.{key}"]
        assert len(match) == 1 and torch.equal(loaded[match[0]], value), key
    logits = model(batch())
    assert logits.shape == (3, 4)


def test_pretrained_classifier_for_other_classes_is_replaced(tmp_path):
    _save_tiny_checkpoint(tmp_path, "Wav2Vec2ForSequenceClassification", num_labels=7)
    model = MODELS.get("wav2vec2")(spec(num_classes=4), pretrained=str(tmp_path), num_layers=0)
    assert model.model.classifier.out_features == 4 and model.model.config.num_hidden_layers == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"pretrained": "/nonexistent/wav2vec2"}, "nothing is downloaded"),
        ({"pretrained": "no-such-org/no-such-model"}, "local Hugging Face cache"),
    ],
)
def test_missing_pretrained_weights_are_a_config_error(args, message):
    with pytest.raises(ConfigError, match=message):
        MODELS.get("wav2vec2")(spec(), **args)


def test_size_knobs_conflict_with_a_checkpoint(tmp_path):
    _save_tiny_checkpoint(tmp_path, "Wav2Vec2Model")
    with pytest.raises(ConfigError, match="only num_layers"):
        MODELS.get("wav2vec2-fn")(spec(), pretrained=str(tmp_path), hidden_size=64)
    with pytest.raises(ConfigError, match="num_layers 5"):
        MODELS.get("wav2vec2-fn")(spec(), pretrained=str(tmp_path), num_layers=5)


@pytest.mark.parametrize("name", FAMILY)
def test_audio_too_short_for_the_conv_feature_encoder(name):
    factory = MODELS.get(name)
    # 0.15 s → 8 frames, fewer than SpecAugment's 10-frame span; 3280 samples (0.205 s) give 10.
    with pytest.raises(ConfigError, match=r"audio too short for wav2vec2.*data.clip_seconds >= 0.205"):
        factory(spec(samples=2400), **factory.tiny_args)
    with pytest.raises(ConfigError, match="0 frames"):
        factory(spec(samples=300), **{**factory.tiny_args, "mask_time_prob": 0.0})
    factory(spec(samples=3280), **factory.tiny_args)  # just long enough


def test_other_sample_rates_and_bad_sizes_are_config_errors():
    factory = MODELS.get("wav2vec2")
    with pytest.raises(ConfigError, match="data.sample_rate: 16000"):
        factory(spec(sample_rate=22050), **factory.tiny_args)
    with pytest.raises(ConfigError, match="divisible by num_heads"):
        factory(spec(), **{**factory.tiny_args, "num_heads": 3})
    with pytest.raises(ConfigError, match="no features"):
        MODELS.get("wav2vec2-fn")(spec(), conv_h_count=0, conv_w_count=0, time_mean=False, **TINY_ENCODER)


def test_input_is_normalised_per_example():
    """Raw samples of any loudness and offset give the same logits: the model applies
    wav2vec2's zero-mean, unit-variance normalisation itself."""
    model = build("wav2vec2").eval()
    data = batch()
    with torch.no_grad():
        quiet = model(data)
        loud = model({**data, "audio": 8.0 * data["audio"] + 0.3})
    torch.testing.assert_close(quiet, loud, rtol=1e-3, atol=1e-4)


def test_defaults_are_base_960h():
    model = MODELS.get("wav2vec2")(spec(samples=32000))
    config = model.model.config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.intermediate_size) == (
        12,
        768,
        12,
        3072,
    )
    assert list(config.conv_dim) == [512] * 7 and config.feat_extract_norm == "group"
    assert model.weights_source == "random init from the wav2vec2-base-960h config"
    assert 94e6 < sum(p.numel() for p in model.parameters()) < 96e6


@pytest.mark.parametrize("name", FAMILY)
def test_factories_share_the_encoder_options(name):
    """Each factory spells out the encoder options (they are its model_args schema); their
    defaults must stay those of EncoderOptions."""
    parameters = inspect.signature(MODELS.get(name)).parameters
    for option, default in EncoderOptions.__dataclass_fields__.items():
        assert parameters[option].default == default.default, option


def test_checkpoint_without_weights_is_a_config_error(tmp_path):
    _save_tiny_checkpoint(tmp_path, "Wav2Vec2Model")
    for weights in tmp_path.glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(ConfigError, match="model_args.pretrained"):
        MODELS.get("wav2vec2-cnn")(spec(), pretrained=str(tmp_path))
