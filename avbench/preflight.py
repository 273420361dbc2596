"""What a run checks and resolves before it reads data or builds a model: where the data is
(writing a synthetic stand-in on first use), the model's arguments against its factory, the
inputs it reads, and whether it can be built with the values at all.

Shared by `avbench run`, `validate`, the sweeps (which check every suggestion) and
`list models`; imports no torch.
"""

from __future__ import annotations

import inspect
import json
import os
import typing
from pathlib import Path

from avbench.config import EvaluationConfig, Experiment
from avbench.errors import ConfigError, DatasetError
from avbench.registry import MODELS, TASKS, did_you_mean
from avbench.spec import TaskSpec

SYNTHETIC_MARKER = ".avbench-synthetic"


def synthetic_root(task: str, size: str = "small") -> Path:
    """$AVBENCH_DATA/<task> for the default size, <task>-<size> for others, so switching
    presets never rewrites a stand-in (and never invalidates its cached features)."""
    base = Path(os.environ.get("AVBENCH_DATA", "data/synthetic"))
    return base / (task if size == "small" else f"{task}-{size}")


def ensure_synthetic(task_name: str, size: str) -> Path:
    """Write the stand-in once; a lock keeps concurrent workers from writing it twice."""
    import fcntl

    root = synthetic_root(task_name, size)
    marker = root / SYNTHETIC_MARKER
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists() or json.loads(marker.read_text()).get("size") != size:
            TASKS.get(task_name)().synthesize(root, size=size, seed=0)
    return root


def resolve_data_root(experiment: Experiment, *, synthetic: bool) -> tuple[Path, str]:
    """Where the data is and whether it is real; writes the stand-in on first use."""
    if synthetic:
        root, kind = ensure_synthetic(experiment.task, experiment.data.synth_size), "synthetic"
    else:
        if experiment.data.root is None:
            layout = TASKS.get(experiment.task).layout
            raise DatasetError(
                f"{experiment.name}: no data.root for task '{experiment.task}' (expected {layout}); "
                "set data.root, pass --set data.root=PATH, or use --synthetic"
            )
        root = Path(experiment.data.root).expanduser()
        kind = "synthetic" if (root / SYNTHETIC_MARKER).exists() else "real"
    if experiment.data.shuffle_train_labels:
        kind += ", shuffled train labels"
    return root, kind


def check_model_args(experiment: Experiment) -> dict:
    """model_args against the factory's signature: unknown keys and wrong types fail early."""
    from pydantic import ConfigDict, ValidationError, create_model

    factory = MODELS.get(experiment.model)
    hints = typing.get_type_hints(factory)
    fields = {
        name: (hints.get(name, typing.Any), param.default)
        for name, param in list(inspect.signature(factory).parameters.items())[1:]
    }
    for key in experiment.model_args:
        if key not in fields:
            raise ConfigError(
                f"unknown config key 'model_args.{key}' for model '{experiment.model}'{did_you_mean(key, fields)}"
            )
    schema = create_model(f"{experiment.model}-args", __config__=ConfigDict(extra="forbid"), **fields)
    try:
        checked = schema.model_validate(experiment.model_args).model_dump()
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"'model_args.{where}': {err['msg']} (got {err.get('input')!r})") from None
    _check_objective_sections(experiment, factory.objective)
    return checked


def _check_objective_sections(experiment: Experiment, objective: str) -> None:
    """Settings only one kind of model reads are refused for the other, never silently ignored."""
    if objective == "reconstruction":
        if experiment.data.fold != 1:
            raise ConfigError(
                f"model '{experiment.model}' cross-validates over every fold in each run; data.fold does not apply"
            )
    elif experiment.evaluation != EvaluationConfig():
        raise ConfigError(
            f"the evaluation section scores learned representations; model '{experiment.model}' "
            "is a classifier: remove it"
        )


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
    if "audio" in factory.modalities and data.audio_feature != wanted:
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
    )


def check_feasible(experiment: Experiment, model_args: dict | None = None) -> None:
    """Raise InfeasibleConfig (or ConfigError) when the model cannot be built with these
    values, through its registered `check`, before any data is read: `avbench run` stops with
    one line, a sweep skips the combination untrained."""
    factory = MODELS.get(experiment.model)
    if factory.check is None:
        return
    if model_args is None:
        model_args = check_model_args(experiment)
    factory.check(spec_without_data(with_model_inputs(experiment)), **model_args)
