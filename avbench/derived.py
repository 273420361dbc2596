"""Every compatible (model, task) pair is an experiment, with or without a file.

`<model>-<task>` that no file claims is derived from what the two declare: the model's
`register_model(defaults=, search=, tiny=, tiny_data=, presets=)` and the task's class
attributes (`modalities`, `fold_count`, `data_defaults`). A file of the same name, built-in or
the user's, overrides the derivation (avbench.catalog looks for files first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from avbench.dotted import deep_merge, set_dotted
from avbench.errors import ConfigError
from avbench.registry import MODELS, TASKS

# What a derived experiment searches and how long it trains before the model's own defaults.
GENERIC = {
    "train": {"epochs": 10, "batch_size": None, "lr": None, "optimizer": None, "patience": 3},
    "sweep": {"trials": 10},
}
GENERIC_PRESETS = {
    # The smallest thing that exercises every stage: tests and smoke runs.
    "tiny": {
        "data": {"clip_seconds": 1.0, "n_mels": 32, "synth_size": "tiny"},
        "train": {"epochs": 2, "patience": 0},
        "sweep": {"trials": 2},
    },
    # A run a 2-core CPU finishes in minutes on the small stand-in.
    "cpu": {
        "data": {"synth_size": "small"},
        "train": {"epochs": 10, "patience": 4, "scheduler": "cosine"},
        "sweep": {"trials": 6},
    },
}


def incompatibility(model: str, task: str) -> str | None:
    """Why the pair cannot be an experiment (short enough for a grid cell), or None."""
    factory, task_cls = MODELS.get(model), TASKS.get(task)
    missing = [m for m in factory.modalities if m not in task_cls.modalities]
    if missing:
        return f"needs {missing[0]}"
    if factory.objective == "reconstruction" and task_cls.fold_count is None:
        return "needs folds"  # it cross-validates over the predefined folds in every run
    return None


def split_name(name: str) -> tuple[str, str] | None:
    """'spectrogram-cnn-esc50' → ('spectrogram-cnn', 'esc50'), when both are registered."""
    for task in TASKS.names():
        model = name.removesuffix(f"-{task}")
        if model != name and model in MODELS:
            return model, task
    return None


def derived_raw(model: str, task: str) -> dict[str, Any]:
    """The experiment mapping of a compatible pair, as if it were read from a file."""
    factory, task_cls = MODELS.get(model), TASKS.get(task)
    raw: dict[str, Any] = {
        "task": task,
        "model": model,
        "data": {**task_cls.data_defaults, "modalities": list(factory.modalities)},
        **GENERIC,
    }
    raw = deep_merge(raw, factory.defaults)
    for field in factory.search:
        set_dotted(raw, field, None)
    tiny = {"data": factory.tiny_data, "model_args": factory.tiny_args}
    raw["presets"] = {"tiny": deep_merge(deep_merge(GENERIC_PRESETS["tiny"], tiny), factory.presets.get("tiny", {}))}
    if "cpu" in factory.presets:
        raw["presets"]["cpu"] = deep_merge(GENERIC_PRESETS["cpu"], factory.presets["cpu"])
    return raw


def derive_experiment(name: str) -> dict[str, Any] | None:
    """The derived mapping for `<model>-<task>`; None when the name is no pair; an error
    saying why when the pair is incompatible."""
    pair = split_name(name)
    if pair is None:
        return None
    reason = incompatibility(*pair)
    if reason is not None:
        raise ConfigError(f"no experiment '{name}': model '{pair[0]}' {reason}, which task '{pair[1]}' lacks")
    return derived_raw(*pair)


def derived_names() -> list[str]:
    return [f"{m}-{t}" for m in MODELS.names() for t in TASKS.names() if incompatibility(m, t) is None]


@dataclass(frozen=True)
class Cell:
    """One (model, task) of the grid: `kind` is file, derived or incompatible; `detail` says
    where the file comes from, or why the pair is incompatible."""

    model: str
    task: str
    kind: str
    detail: str = ""

    @property
    def name(self) -> str:
        return f"{self.model}-{self.task}"


def matrix() -> list[Cell]:
    """Every models × tasks pair, row by row."""
    from avbench.catalog import experiment_files

    files = {entry.name: entry for entry in experiment_files()}
    cells = []
    for model in MODELS.names():
        for task in TASKS.names():
            name, reason = f"{model}-{task}", incompatibility(model, task)
            if name in files:
                cells.append(Cell(model, task, "file", files[name].origin))
            elif reason is not None:
                cells.append(Cell(model, task, "incompatible", reason))
            else:
                cells.append(Cell(model, task, "derived"))
    return cells


def experiments_of(*, task: str | None = None, model: str | None = None) -> list[str]:
    """The runnable experiments of one row (model) or column (task) of the grid, or of one
    cell when both are given."""
    if task is not None:
        TASKS.get(task)  # unknown names fail with a did-you-mean
    if model is not None:
        MODELS.get(model)
    return [
        cell.name
        for cell in matrix()
        if cell.kind != "incompatible" and task in (None, cell.task) and model in (None, cell.model)
    ]
