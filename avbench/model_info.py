"""`avbench list models`: each model with what it reads and its size in a real experiment.

A parameter count depends on the task (classes) and the input shapes, so it is counted in the
model's own experiment (`<model>-cremad` when there is one) at the experiment's values, with
searched (null) model arguments at the factory's defaults. Models are built on torch's meta
device: no memory is allocated and no weights are initialised, so listing a 95M-parameter
model takes milliseconds.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from avbench.catalog import list_experiments, load_experiment
from avbench.errors import AvbenchError
from avbench.registry import MODELS


@dataclass
class ModelInfo:
    name: str
    modalities: tuple[str, ...]
    audio_input: str
    params: int | None  # None when no experiment uses the model or it cannot be built here
    counted_in: str | None  # the experiment the count comes from
    summary: str


def experiments_by_model() -> dict[str, list[str]]:
    """model → the experiments that use it; each file is read once."""
    found: dict[str, list[str]] = {}
    for name in list_experiments():
        try:
            found.setdefault(load_experiment(name).config.model, []).append(name)
        except AvbenchError:
            continue  # `avbench validate` reports broken files; listing models must not fail on them
    return found


def experiment_for(model: str, by_model: dict[str, list[str]] | None = None) -> str | None:
    """The experiment that stands for a model: `<model>-cremad` when it exists, else its first."""
    names = (experiments_by_model() if by_model is None else by_model).get(model, [])
    return f"{model}-cremad" if f"{model}-cremad" in names else (names[0] if names else None)


def count_parameters(experiment_name: str) -> int:
    import torch

    from avbench.models import create_model
    from avbench.preflight import spec_without_data, with_model_inputs

    loaded = load_experiment(experiment_name)
    experiment = with_model_inputs(loaded.config)
    spec = spec_without_data(experiment)  # outside the meta device: a probe measures its encoder's output here
    with torch.device("meta"):
        model = create_model(experiment, spec)
    return sum(p.numel() for p in model.parameters())


def describe_models() -> list[ModelInfo]:
    infos = []
    by_model = experiments_by_model()
    for name in MODELS.names():
        factory = MODELS.get(name)
        experiment = experiment_for(name, by_model)
        params = None
        if experiment is not None:
            try:
                params = count_parameters(experiment)
            except (AvbenchError, RuntimeError, NotImplementedError):
                params = None  # e.g. weights named in the experiment that this machine lacks
        module = sys.modules.get(factory.__module__)
        doc = ((module and module.__doc__) or factory.__doc__ or "").strip().splitlines()
        infos.append(
            ModelInfo(name, factory.modalities, factory.audio_input, params, experiment, doc[0] if doc else "")
        )
    return infos


def format_count(params: int | None) -> str:
    if params is None:
        return "-"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if params >= size:
            return f"{params / size:.1f}{unit}"
    return str(params)
