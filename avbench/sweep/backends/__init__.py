"""Sweep backends: one module per search engine, selected through one table.

A backend module turns its engine's suggestions into avbench.sweep.core trials and their ends
back into the engine's state. It defines `sweep(plan: SweepPlan) -> SweepOutcome` and may
declare `SUPPORTS_WORKERS = True` (it can run `--workers N` processes against one storage) or
`SUPPORTS_LAUNCHER = False` (it cannot run under torchrun / accelerate launch). Modules are
imported only when chosen, so one backend never imports another's engine.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from avbench.errors import ConfigError

BACKENDS: dict[str, str] = {
    "optuna": "avbench.sweep.backends.optuna",
    "wandb": "avbench.sweep.backends.wandb_local",
    "wandb-online": "avbench.sweep.backends.wandb_online",
}


def choose_backend(name: str, use_wandb: bool) -> str:
    """The table entry that runs `--backend NAME`: `wandb` goes to W&B's server when logged
    in (and tracking is on), else runs W&B's engine here."""
    from avbench.registry import did_you_mean
    from avbench.sweep.backends.wandb_online import wandb_online

    if name not in BACKENDS:
        raise ConfigError(f"unknown backend '{name}'{did_you_mean(name, tuple(BACKENDS))}")
    if name == "wandb" and wandb_online(use_wandb):
        return "wandb-online"
    if name == "wandb-online" and not wandb_online(use_wandb):
        raise ConfigError(
            "--backend wandb-online needs a W&B login (`wandb login` or WANDB_API_KEY), tracking on "
            "(no --no-wandb) and WANDB_MODE not offline"
        )
    return name


def backend_module(name: str) -> ModuleType:
    return importlib.import_module(BACKENDS[name])
