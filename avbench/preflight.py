"""What a run checks and resolves before it reads data or builds a model: where the data is
(writing a synthetic stand-in on first use), the model's arguments (avbench.models checks them), the
inputs it reads, and whether it can be built with the values at all.

Shared by `avbench run`, `validate`, the sweeps (which check every suggestion) and
`list models`; imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from avbench.config import Experiment
from avbench.errors import ConfigError, DatasetError
from avbench.models import check_model_args  # re-exported: `validate` and the sweeps check with it
from avbench.registry import MODELS, TASKS
from avbench.spec import TaskSpec
from avbench.tasks.standin import MARKER, ensure_synthetic


def resolve_data_root(experiment: Experiment, *, synthetic: bool) -> tuple[Path, str]:
    """Where the data is and whether it is real; writes the stand-in on first use."""
    if synthetic:
        root, kind = (
            ensure_synthetic(experiment.task, experiment.data.synth_size, experiment.data.synthetic_shift),
            "synthetic",
        )
    else:
        if experiment.data.root is None:
            layout = TASKS.get(experiment.task).layout
            raise DatasetError(
                f"{experiment.name}: no data.root for task '{experiment.task}' (expected {layout}); "
                "set data.root, pass --set data.root=PATH, or use --synthetic"
            )
        root = Path(experiment.data.root).expanduser()
        kind = "synthetic" if (root / MARKER).exists() else "real"
    if experiment.data.shuffle_train_labels:
        kind += ", shuffled train labels"
    return root, kind


def with_model_inputs(experiment: Experiment) -> Experiment:
    """The experiment with `data.audio_feature: auto` replaced by the feature its model reads,
    after checking that the data gives the model every modality it needs."""
    factory = MODELS.get(experiment.model)
    data = experiment.data
    missing = [m for m in factory.modalities if m not in data.modalities]
    if missing:
        raise ConfigError(
            f"model '{experiment.model}' reads {' + '.join(factory.modalities)}; add {missing[0]} to "
            f"data.modalities (now {data.modalities})"
        )
    wanted = factory.audio_input
    if data.audio_feature == "auto":
        return experiment.model_copy(update={"data": data.model_copy(update={"audio_feature": wanted})})
    # A square linear spectrogram is an image too: any model that reads log-mel images takes it.
    image_instead = wanted == "logmel" and data.audio_feature == "linear_spectrogram"
    if "audio" in factory.modalities and data.audio_feature != wanted and not image_instead:
        raise ConfigError(
            f"model '{experiment.model}' reads audio as {wanted}, but data.audio_feature is "
            f"{data.audio_feature}; remove it or set it to {wanted}"
        )
    return experiment


def model_input_extractor(experiment: Experiment, model_args: dict, cache_root: Path):
    """The model's own audio extractor (registered `input_extractor`: a checkpoint's feature
    extractor, a frozen encoder's embeddings), or None for the features the data path knows."""
    factory = MODELS.get(experiment.model)
    if factory.input_extractor is None or "audio" not in experiment.data.modalities:
        return None
    return factory.input_extractor(experiment.data, model_args, cache_root)


def spec_without_data(experiment: Experiment) -> TaskSpec:
    """The TaskSpec a model will get, from the config alone (shapes follow from the data
    settings): for checks and parameter counts before any data is read. The class count is
    the task's declared one; folder tasks (which learn theirs from the data) count 10."""
    from avbench.data.dataset import example_shapes

    task = TASKS.get(experiment.task)()
    classes = getattr(task, "classes", ()) or tuple(range(10))
    shapes = example_shapes(experiment.data.model_copy(update={"audio_feature": "logmel"}))
    own = model_input_extractor(experiment, check_model_args(experiment), cache_root=None)
    if own is not None:  # a checkpoint's input, an encoder's embeddings: their shapes need no data
        shapes["audio"] = tuple(own.settings.shape)
    else:
        shapes = example_shapes(experiment.data)
    return TaskSpec(
        num_classes=len(classes),
        modalities=tuple(experiment.data.modalities),
        sample_rate=experiment.data.sample_rate,
        shapes=shapes,
        class_names=tuple(map(str, classes)),
        heads=dict(task.heads),  # declared heads (annotations: emotion, state), so counts include them
    )


def check_feasible(experiment: Experiment, model_args: dict | None = None) -> None:
    """Raise InfeasibleConfig (or ConfigError) when the model cannot be built with these
    values, through its registered `check`, before any data is read: `avbench run` stops with
    one line, a sweep skips the combination untrained. A run passes the `model_args` it has
    checked, of an experiment whose model inputs it has resolved, so neither is done twice."""
    from avbench.augment import check_normalise

    check_normalise(experiment)
    factory = MODELS.get(experiment.model)
    if factory.check is None and not factory.weights:
        return
    if model_args is None:
        model_args = check_model_args(experiment)
        experiment = with_model_inputs(experiment)
    spec = spec_without_data(experiment)
    if factory.check is not None:
        factory.check(spec, **model_args)
    check_weight_files(factory, spec, model_args)


def check_weights(experiment: Experiment) -> None:
    """`avbench validate`'s check of the weights files an experiment names."""
    factory = MODELS.get(experiment.model)
    if factory.weights:
        check_weight_files(factory, spec_without_data(with_model_inputs(experiment)), check_model_args(experiment))


def check_weight_files(factory: Callable[..., Any], spec: TaskSpec, model_args: dict) -> None:
    """The weights files a model's arguments name (its registered `weights` fields) fit it:
    the model is built on the meta device, which allocates nothing, so its own loading code
    compares every file's keys and shapes, and a bad file fails in one line before any data."""
    if not any(model_args.get(field) for field in factory.weights):
        return
    import torch

    with torch.device("meta"):
        factory(spec, **model_args)
