"""Every registered model, at its tiny size: forward shape, backward reaches every parameter.
Parametrised over the registry, so a new model is tested without a new test."""

from __future__ import annotations

import pytest
import torch

from avbench.registry import MODELS
from avbench.spec import TaskSpec

SPEC = TaskSpec(num_classes=5, modalities=("audio",), sample_rate=16000, shapes={"audio": (1, 32, 101)})


def fake_batch(spec: TaskSpec, size: int = 3) -> dict:
    batch = {name: torch.randn(size, *shape) for name, shape in spec.shapes.items()}
    batch["label"] = torch.randint(0, spec.num_classes, (size,))
    return batch


@pytest.mark.parametrize("name", MODELS.names())
def test_tiny_forward_backward(name):
    factory = MODELS.get(name)
    torch.manual_seed(0)
    model = factory(SPEC, **factory.tiny_args)
    model.train()
    batch = fake_batch(SPEC)
    logits = model(batch)
    assert logits.shape == (3, SPEC.num_classes)
    torch.nn.functional.cross_entropy(logits, batch["label"]).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"


@pytest.mark.parametrize("name", MODELS.names())
def test_registry_metadata(name):
    factory = MODELS.get(name)
    assert set(factory.modalities) <= {"audio", "video"}
    assert isinstance(factory.tiny_args, dict)


def test_unknown_model_suggests():
    from avbench.errors import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'spectrogram-cnn'"):
        MODELS.get("spectrogram_cnn")
