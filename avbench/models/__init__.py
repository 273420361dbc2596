"""Models: one module per family, each a `@register_model` factory. Modules are auto-discovered.

A factory receives a TaskSpec and its own keyword arguments (the `model_args` schema) and
returns an nn.Module whose `forward(batch: dict)` gives logits [B, num_classes]. Models never
import tasks or data loaders. `create_model(experiment, spec)` builds any of them: every
caller (the recipes, the dry-run estimate, `list models`, `features generate`) goes through it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from avbench.config import Experiment
    from avbench.spec import TaskSpec


def create_model(experiment: Experiment, spec: TaskSpec, *, checked_args: dict | None = None) -> torch.nn.Module:
    """The experiment's model for a task of this spec: its registered factory called with the
    experiment's model_args, checked against the factory's signature. A run checks them once
    before reading any data and passes the result as `checked_args`."""
    from avbench.preflight import check_model_args
    from avbench.registry import MODELS

    args = check_model_args(experiment) if checked_args is None else checked_args
    return MODELS.get(experiment.model)(spec, **args)
