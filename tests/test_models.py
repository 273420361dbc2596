"""Every registered model, at its tiny size: forward shape, backward reaches every parameter.
Parametrised over the registry, so a new model is tested without a new test. The inputs have
the shapes the data path gives that model (its modalities, audio feature and tiny data
settings), so a model cannot pass here and then fail on real batches."""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass

import pytest
import torch

from avbench.config import DataConfig
from avbench.data.dataset import example_shapes
from avbench.registry import MODELS
from avbench.spec import TaskSpec

TINY_DATA = {"clip_seconds": 1.0, "n_mels": 32, "num_frames": 4, "image_size": 32}


def tiny_spec(name: str, num_classes: int = 5, heads: dict[str, tuple[str, ...]] | None = None) -> TaskSpec:
    factory = MODELS.get(name)
    data = DataConfig(
        **{
            **TINY_DATA,
            **factory.tiny_data,
            "modalities": list(factory.modalities),
            "audio_feature": factory.audio_input,
        }
    )
    shapes = example_shapes(data.model_copy(update={"audio_feature": "logmel"}))
    if factory.input_extractor is not None:  # inputs only the model can make: a checkpoint's, an encoder's
        shapes["audio"] = tuple(factory.input_extractor(data, factory.tiny_args, None).settings.shape)
    else:
        shapes = example_shapes(data)
    return TaskSpec(
        num_classes=num_classes,
        modalities=factory.modalities,
        sample_rate=data.sample_rate,
        shapes=shapes,
        heads=dict(heads or {}),
    )


def fake_batch(spec: TaskSpec, size: int = 3) -> dict:
    batch = {name: torch.randn(size, *shape) for name, shape in spec.shapes.items()}
    batch["label"] = torch.randint(0, spec.num_classes, (size,))
    return batch


@pytest.mark.parametrize("name", MODELS.names())
def test_tiny_forward_backward(name):
    factory = MODELS.get(name)
    spec = tiny_spec(name)
    torch.manual_seed(0)
    model = factory(spec, **factory.tiny_args)
    model.train()
    batch = fake_batch(spec)
    output = model(batch)
    if factory.objective == "reconstruction":  # learns without labels: its own loss, a scalar
        loss = model.loss(output, batch)
        assert loss.shape == () and torch.isfinite(loss)
    else:
        assert output.shape == (3, spec.num_classes)
        loss = torch.nn.functional.cross_entropy(output, batch["label"])
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    # `modalities` decides what the data path loads: each declared one must be read (the batch
    # above holds only those, so reading an undeclared one already failed).
    for modality in factory.modalities:
        with torch.no_grad(), pytest.raises(KeyError, match=modality):
            model({key: value for key, value in batch.items() if key != modality})


CLASSIFIERS = [name for name in MODELS.names() if MODELS.get(name).objective == "classification"]
TWO_HEADS = {"emotion": ("a", "b", "c", "d"), "state": ("x", "y", "z")}


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_tiny_multi_head_forward_backward(name):
    """Every classifier family can be given several heads: a dict of logits, each head's
    width its own, and the summed loss reaches every parameter."""
    factory = MODELS.get(name)
    spec = tiny_spec(name, num_classes=4, heads=TWO_HEADS)
    torch.manual_seed(0)
    model = factory(spec, **factory.tiny_args)
    model.train()
    batch = fake_batch(spec)
    output = model(batch)
    assert isinstance(output, dict) and list(output) == ["emotion", "state"]
    assert output["emotion"].shape == (3, 4) and output["state"].shape == (3, 3)
    loss = sum(
        torch.nn.functional.cross_entropy(logits, batch["label"] % logits.shape[-1]) for logits in output.values()
    )
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"


def test_unknown_model_suggests():
    from avbench.errors import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'spectrogram-cnn'"):
        MODELS.get("spectrogram_cnn")


@dataclass(frozen=True)
class _Group:
    width: int = 4
    kind: str = "plain"


def test_flat_options_lists_a_group_in_place_and_gathers_it_back():
    from avbench.models._options import flat_options

    @flat_options(group=_Group)
    def factory(spec, first: int = 0, group: _Group = _Group(), last: bool = False):
        return first, group, last

    assert list(inspect.signature(factory).parameters) == ["spec", "first", "width", "kind", "last"]
    assert typing.get_type_hints(factory)["width"] is int
    assert factory(None, width=8, last=True) == (0, _Group(width=8), True)
