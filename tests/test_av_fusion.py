"""av-fusion: requires_grad freezes exactly the extractors it names (weights and BatchNorm
statistics), extractor weights load from state-dict files (OpenAV's own, strictly, giving
OpenAV's features), bad weights and frozen random extractors stop a run in one line before
any data, segments are required, and the output is the decoders' averaged distribution
written as logits (no softmax for CE to redo)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
import yaml

from avbench.catalog import load_experiment
from avbench.config import TrainConfig
from avbench.errors import ConfigError
from avbench.models._openav_nets import ResNet18
from avbench.models._weights import load_module_weights
from avbench.registry import MODELS
from avbench.sweep.space import representative, resolve_space
from avbench.train.optim import build_optimizer
from tests import openav_reference
from tests.conftest import BUILTIN
from tests.test_models import fake_batch, tiny_spec

FROZEN = {
    "none": set(),
    "a": {"feature_audio"},
    "v": {"feature_video"},
    "av": {"feature_audio", "feature_video"},
}


def build(**args):
    factory = MODELS.get("av-fusion")
    return factory(tiny_spec("av-fusion"), **{**factory.tiny_args, **args})


def float_state(model) -> dict[str, torch.Tensor]:
    """Weights and BatchNorm running statistics (not the integer batch counters)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}


@pytest.mark.parametrize("requires_grad", ["none", "a", "v", "av"])
def test_requires_grad_freezes_the_named_extractors_and_nothing_else(requires_grad):
    torch.manual_seed(0)
    model = build(requires_grad=requires_grad, allow_random_frozen=True)
    frozen = FROZEN[requires_grad]
    before = float_state(model)
    # Weight decay would move a frozen weight that reached the optimizer even without a gradient.
    optimizer = build_optimizer(model.parameters(), TrainConfig(optimizer="adamw", lr=1e-2, weight_decay=0.1))
    spec = tiny_spec("av-fusion")
    model.train()
    for _ in range(3):
        batch = fake_batch(spec, size=4)
        optimizer.zero_grad()
        F.cross_entropy(model(batch), batch["label"]).backward()
        optimizer.step()
    for name, param in model.named_parameters():
        if name.split(".")[0] in frozen:
            assert not param.requires_grad and param.grad is None, name
    after = float_state(model)
    for part in ("feature_audio", "feature_video"):
        moved = [k for k in before if k.startswith(f"{part}.") and not torch.equal(before[k], after[k])]
        if part in frozen:
            assert not moved, f"frozen {part} changed: {moved[:3]}"
        else:
            assert moved, f"{part} did not train"
    assert not torch.equal(before["decoders.0.2.weight"], after["decoders.0.2.weight"])  # the fusion always trains


def test_extractor_weights_load_from_state_dict_files(tmp_path):
    torch.manual_seed(1)
    source = build()
    audio_file, checkpoint = tmp_path / "audio.pt", tmp_path / "best.pt"
    torch.save(source.feature_audio.state_dict(), audio_file)  # the extractor's own state dict
    torch.save({"model": source.state_dict(), "epoch": 3}, checkpoint)  # an avbench run's best.pt
    torch.manual_seed(2)
    model = build(path_to_model_fa=str(audio_file), path_to_model_fv=str(checkpoint), requires_grad="a")
    for part in ("feature_audio", "feature_video"):
        loaded, expected = getattr(model, part).state_dict(), getattr(source, part).state_dict()
        assert all(torch.equal(loaded[k], expected[k]) for k in expected), part
    assert not torch.equal(model.decoders[0][0].weight, source.decoders[0][0].weight)  # only the extractors
    assert model.weights_source == f"feature_audio: {audio_file} (frozen); feature_video: {checkpoint} (trained)"
    assert build().weights_source == "feature_audio: random init (trained); feature_video: random init (trained)"


def test_weights_of_another_width_are_refused_by_name(tmp_path):
    path = tmp_path / "narrow.pt"
    torch.save(build(audio_width=4).feature_audio.state_dict(), path)
    with pytest.raises(ConfigError, match=r"path_to_model_fa: .*narrow.pt does not fit feature_audio: shape"):
        build(path_to_model_fa=str(path))


def test_openav_published_extractors_load_strictly_and_give_openav_features(tmp_path):
    """State dicts saved from OpenAV's ResNet18(channels=1) and CNNLSTMPyTorch() (its exact names
    and shapes) load strictly, and in eval mode the 512-d features equal OpenAV's."""
    audio_file, video_file, audio_net, video_net = openav_reference.write_published_weights(tmp_path)
    full_size = {"audio_width": 64, "video_width": 64, "lstm_size": 512, "input_dim": 512}
    model = build(**full_size, path_to_model_fa=str(audio_file), path_to_model_fv=str(video_file), requires_grad="av")
    model.eval()
    for ours, theirs in ((model.feature_audio, audio_net), (model.feature_video, video_net)):
        assert ours.state_dict().keys() == theirs.state_dict().keys()
    # OpenAV's shapes: a 1 x 64 x 306 log-mel per segment (odd sizes down the net: "same" padding
    # pads right/bottom), 88 x 88 lip frames; a few frames keep the test fast.
    audio, video = torch.randn(2, 1, 64, 306), torch.rand(2, 3, 3, 88, 88)
    with torch.no_grad():
        torch.testing.assert_close(model.feature_audio(audio), audio_net(audio), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.feature_video(video), video_net(video), atol=1e-5, rtol=1e-5)
        assert audio_net(audio).shape == (2, 512) and video_net(video).shape == (2, 512)


def test_an_openav_avmodel_checkpoint_gives_its_extractor(tmp_path):
    """OpenAV's trained AVModel (`e32_0.473251.pth`: feature_audio.*, fc_audio.*, fusion.*):
    the `feature_audio.` entries are the audio extractor's weights."""
    torch.manual_seed(4)
    audio_net = openav_reference.randomise_batch_norms(openav_reference.ResNet18(channels=1), seed=5)
    whole = {f"feature_audio.{key}": value for key, value in audio_net.state_dict().items()}
    whole |= {"fc_audio.weight": torch.randn(128, 2), "fusion.decoders.0.fc2.bias": torch.randn(26)}
    torch.save(whole, tmp_path / "e32_0.473251.pth")
    ours = ResNet18(1)
    load_module_weights(ours, str(tmp_path / "e32_0.473251.pth"), field="path_to_model_fa", name="feature_audio")
    audio = torch.randn(1, 1, 64, 100)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(audio), audio_net.eval()(audio), atol=1e-5, rtol=1e-5)


def test_freezing_an_extractor_without_weights_needs_a_yes():
    with pytest.raises(ConfigError, match="requires_grad=v freezes feature_video, which has no weights"):
        build(requires_grad="v")
    assert build(requires_grad="v", allow_random_frozen=True).frozen == ("feature_video",)


def test_output_is_the_log_of_the_decoders_mean_distribution():
    torch.manual_seed(0)
    model = build(encoder_decoder=3).eval()
    decoded: list[torch.Tensor] = []
    for decoder in model.decoders:
        decoder.register_forward_hook(lambda module, args, out: decoded.append(out))
    logits = model(fake_batch(tiny_spec("av-fusion")))
    assert len(decoded) == 3
    mean = torch.stack([d.softmax(dim=-1) for d in decoded]).mean(dim=0)
    torch.testing.assert_close(logits.softmax(dim=-1), mean)
    torch.testing.assert_close(logits.exp().sum(dim=-1), torch.ones(len(logits)))  # log-probabilities


def _tiny_run_args(workspace) -> list[str]:
    loaded = load_experiment("av-fusion-cremad", preset="tiny")
    values = [f"{k}={json.dumps(representative(p))}" for k, p in resolve_space(loaded).params.items()]
    return [
        "run",
        "av-fusion-cremad",
        "--preset",
        "tiny",
        "--synthetic",
        "--no-wandb",
        *[arg for value in values for arg in ("--set", value)],
    ]


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.max_segment=0", "set data.max_segment to 1 or more"),
        ("model_args.path_to_model_fv=missing.pt", "model_args.path_to_model_fv: no such file: missing.pt"),
        ("model_args.encoder_decoder=51", "encoder_decoder must be 1 to 50"),
    ],
)
def test_bad_settings_stop_the_run_in_one_line_before_any_data(cli, workspace, override, message):
    result = cli(*_tiny_run_args(workspace), "--set", override, expect=1)
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (workspace / "results" / "runs").exists()


class NotWeights:
    """Pickled as an object: torch.load(weights_only=True) must refuse to build it."""


@pytest.mark.parametrize("content", ["wrong_state_dict", "pickled_object"])
def test_a_weights_file_that_does_not_fit_stops_the_run_in_one_line_before_any_data(cli, workspace, content):
    path = workspace / "weights.pt"
    if content == "wrong_state_dict":
        torch.save(torch.nn.Linear(3, 2).state_dict(), path)
        expected = f"model_args.path_to_model_fa: {path} does not fit feature_audio: missing conv_layer_s2_same.weight"
    else:
        torch.save({"weights": NotWeights()}, path)
        expected = f"model_args.path_to_model_fa: {path} is not a state dict loadable with weights_only=True"
    result = cli(*_tiny_run_args(workspace), "--set", f"model_args.path_to_model_fa={path}", expect=1)
    assert expected in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (workspace / "results" / "runs").exists()
    if content == "wrong_state_dict":
        assert "unexpected weight, bias" in result.output  # the first keys of each kind, not all of them
    # `avbench validate` checks the file too
    config = yaml.safe_load((BUILTIN / "experiments" / "av-fusion-cremad.yaml").read_text())
    config["model_args"]["path_to_model_fa"] = str(path)
    (workspace / "mine.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    assert expected in cli("validate", "mine.yaml", expect=1).output


def test_freezing_random_extractors_stops_the_run_in_one_line(cli, workspace):
    result = cli(*_tiny_run_args(workspace), "--set", "model_args.requires_grad=av", expect=1)
    assert "requires_grad=av freezes feature_audio, which has no weights" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (workspace / "results" / "runs").exists()
