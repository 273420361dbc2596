"""`avbench new`: a starter experiment and its sweep file, ready for `avbench sweep`.

The experiment is the pair's derived one (avbench.derived) written out with comments: the
model's searchable arguments and the usual train fields are null, and the sweep file holds a
range for every null, so a user edits values and ranges instead of starting from a blank page.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from avbench.errors import ConfigError
from avbench.registry import MODELS, TASKS

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SEARCHED = "  # searched"


class _FlowListDumper(yaml.SafeDumper):
    """Lists on one line ([audio, video]) inside block-style sections."""


_FlowListDumper.add_representer(
    list, lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)
)
SECTION_ORDER = ("task", "model", "data", "model_args", "train", "evaluation", "sweep", "presets")


@dataclass(frozen=True)
class Starter:
    experiment: Path
    sweep: Path
    searched: list[str]


def param_as_sweep_entry(param) -> dict[str, Any]:
    """A parsed range (avbench.sweep.space.Param) in the sweep-file vocabulary again."""
    if param.kind == "categorical":
        return {"values": list(param.choices)}
    if param.kind == "int":
        return {"distribution": "int_uniform", "min": int(param.low), "max": int(param.high)}
    if param.log:
        return {"distribution": "log_uniform_values", "min": param.low, "max": param.high}
    return {"min": float(param.low), "max": float(param.high)}


def _other_model_args(model: str, set_here: dict[str, Any]) -> str:
    """One comment line of the factory's other arguments and their defaults, to tune by hand."""
    parameters = list(inspect.signature(MODELS.get(model)).parameters.values())[1:]
    shown = [f"{p.name}={p.default!r}" for p in parameters if p.name not in set_here]
    return f"# other model_args (factory defaults): {', '.join(shown)}\n" if shown else ""


def experiment_text(name: str, model: str, task: str, raw: dict[str, Any]) -> str:
    # Sections in block style, so each searched null sits on a line of its own and says so;
    # presets compact, one line per section.
    sections = {key: raw[key] for key in SECTION_ORDER if key in raw and key != "presets"}
    body = yaml.dump(sections, Dumper=_FlowListDumper, sort_keys=False, default_flow_style=False, width=100)
    body += yaml.safe_dump({"presets": raw.get("presets", {})}, sort_keys=False, default_flow_style=None, width=100)
    lines = [line + SEARCHED if line.endswith(": null") else line for line in body.splitlines()]
    header = (
        f"# {name}: model {model} on task {task}, written by `avbench new`.\n"
        f"# null = searched by `avbench sweep {name}`; ranges in sweeps/{name}.yaml.\n"
        f"# data.root is the dataset in its published layout: {TASKS.get(task).layout}\n"
        "# (or run on the synthetic stand-in with --synthetic). Presets: tiny (tests), cpu (a CPU demo).\n"
    )
    text = "\n".join(lines) + "\n"
    other = _other_model_args(model, raw.get("model_args") or {})
    return header + text.replace("\ntrain:", f"\n{other}train:", 1)


def sweep_ranges(model: str, searched: list[str]) -> dict[str, dict[str, Any]]:
    """A range for every searched field: the model's declared one, else the built-in default."""
    from avbench.sweep.ranges import DEFAULT_RANGES

    declared = MODELS.get(model).search
    return {key: declared[key] if key in declared else param_as_sweep_entry(DEFAULT_RANGES[key]) for key in searched}


def sweep_text(name: str, metric: str, ranges: dict[str, dict[str, Any]]) -> str:
    body = {"method": "bayes", "metric": {"name": f"val/{metric}", "goal": "maximize"}, "parameters": ranges}
    header = f"# Search ranges of experiments/{name}.yaml (W&B sweep-config vocabulary; Optuna reads it too).\n"
    return header + yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=100)


def write_starter(name: str, *, model: str, task: str, folder: Path = Path(".")) -> Starter:
    """Write folder/experiments/<name>.yaml and folder/sweeps/<name>.yaml; refuses to overwrite."""
    from avbench.config import loaded_experiment, read_mapping
    from avbench.derived import derived_raw, incompatibility
    from avbench.dotted import find_nulls
    from avbench.sweep.space import resolve_space

    if not NAME.match(name) or name.endswith((".yaml", ".yml", ".json")):
        raise ConfigError(f"experiment name '{name}': use letters, digits, '.', '_' and '-' (no suffix)")
    MODELS.get(model), TASKS.get(task)  # unknown names fail with a did-you-mean
    reason = incompatibility(model, task)
    if reason is not None:
        raise ConfigError(f"model '{model}' {reason}, which task '{task}' lacks")
    experiment, sweep = folder / "experiments" / f"{name}.yaml", folder / "sweeps" / f"{name}.yaml"
    for path in (experiment, sweep):
        if path.exists():
            raise ConfigError(f"{path} exists; not overwriting it (pick another name or remove the file)")
    raw = derived_raw(model, task)
    searched = find_nulls(raw)
    metric = (raw.get("train") or {}).get("metric", "acc")
    for path, text in (
        (experiment, experiment_text(name, model, task, raw)),
        (sweep, sweep_text(name, metric, sweep_ranges(model, searched))),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    # What was written must be what `avbench sweep` accepts: read both back as it will.
    written = loaded_experiment(name, read_mapping(experiment), str(experiment))
    return Starter(experiment, sweep, list(resolve_space(written, sweep).params))
