"""av-fusion: requires_grad freezes exactly the extractors it names (weights and BatchNorm
statistics), extractor weights load from state-dict files, segments are required, and the
output is the decoders' averaged distribution written as logits (no softmax for CE to redo)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from avbench.catalog import load_experiment
from avbench.config import TrainConfig
from avbench.errors import ConfigError
from avbench.registry import MODELS
from avbench.sweep.space import representative, resolve_space
from avbench.train.optim import build_optimizer
from tests.test_models import fake_batch, tiny_spec

FROZEN = {
    "none": set(),
    "a": {"audio_extractor"},
    "v": {"video_extractor"},
    "av": {"audio_extractor", "video_extractor"},
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
    model = build(requires_grad=requires_grad)
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
    for part in ("audio_extractor", "video_extractor"):
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
    torch.save(source.audio_extractor.state_dict(), audio_file)  # the extractor's own state dict
    torch.save({"model": source.state_dict(), "epoch": 3}, checkpoint)  # an avbench run's best.pt
    torch.manual_seed(2)
    model = build(path_to_model_fa=str(audio_file), path_to_model_fv=str(checkpoint), requires_grad="a")
    for part in ("audio_extractor", "video_extractor"):
        loaded, expected = getattr(model, part).state_dict(), getattr(source, part).state_dict()
        assert all(torch.equal(loaded[k], expected[k]) for k in expected), part
    assert not torch.equal(model.decoders[0][0].weight, source.decoders[0][0].weight)  # only the extractors
    assert model.weights_source == f"audio extractor: {audio_file} (frozen); video extractor: {checkpoint} (trained)"
    assert build().weights_source == "audio extractor: random init (trained); video extractor: random init (trained)"


def test_weights_of_another_width_are_refused_by_name(tmp_path):
    path = tmp_path / "narrow.pt"
    torch.save(build(audio_width=4).audio_extractor.state_dict(), path)
    with pytest.raises(ConfigError, match="does not fit the audio extractor"):
        build(path_to_model_fa=str(path))


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
