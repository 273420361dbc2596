"""Models: one module per family, each a `@register_model` factory. Found by a scan of their
source (avbench.registry); a lookup imports only the module it needs.

A factory receives a TaskSpec and its own keyword arguments (the `model_args` schema) and
returns an nn.Module whose `forward(batch: dict)` gives logits [B, num_classes]. Models never
import tasks or data loaders. `create_model(experiment, spec)` builds any of them: every
caller (the recipes, the dry-run estimate, `list models`, `features generate`) goes through it.
"""

from __future__ import annotations

import inspect
import typing
from typing import TYPE_CHECKING

from avbench.config import EvaluationConfig, Experiment
from avbench.errors import ConfigError
from avbench.registry import MODELS, did_you_mean

if TYPE_CHECKING:
    import torch

    from avbench.spec import TaskSpec


def create_model(experiment: Experiment, spec: TaskSpec, *, checked_args: dict | None = None) -> torch.nn.Module:
    """The experiment's model for a task of this spec: its registered factory called with the
    experiment's model_args, checked against the factory's signature. A run checks them once
    before reading any data and passes the result as `checked_args`."""
    args = check_model_args(experiment) if checked_args is None else checked_args
    return MODELS.get(experiment.model)(spec, **args)


def check_model_args(experiment: Experiment) -> dict:
    """model_args against the factory's signature: unknown keys and wrong types fail early."""
    from pydantic import ConfigDict, ValidationError
    from pydantic import create_model as schema_of

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
    schema = schema_of(f"{experiment.model}-args", __config__=ConfigDict(extra="forbid"), **fields)
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
