"""Loading a sub-module's weights from a file named by a model argument, for models that
declare such fields (`register_model(weights={field: sub-module})`).

A file that does not fit stops the run in one line naming the field, the file and the first
keys that differ; preflight builds the model on the meta device before any data is read, so
this check runs then, not as a failed trial.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from avbench.errors import ConfigError

SHOWN_KEYS = 3


def read_state_dict(path: Path, field: str) -> Mapping[str, torch.Tensor]:
    """A state dict (or an avbench checkpoint's `model` entry) read with weights_only=True."""
    if not path.is_file():
        raise ConfigError(f"model_args.{field}: no such file: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"model_args.{field}: {path} is not a state dict loadable with weights_only=True ({reason})"
        ) from None
    if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
        state = state["model"]  # an avbench checkpoint (a run's best.pt)
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"model_args.{field}: {path} holds no state dict (a mapping of names to tensors)")
    return state


def _listed(keys: list[str]) -> str:
    more = f" (+{len(keys) - SHOWN_KEYS} more)" if len(keys) > SHOWN_KEYS else ""
    return ", ".join(keys[:SHOWN_KEYS]) + more


def mismatches(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> list[str]:
    """What keeps `state` from loading strictly into a module whose state dict is `expected`."""
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    shapes = [
        f"{key} {list(state[key].shape)} vs {list(expected[key].shape)}"
        for key in expected
        if key in state and state[key].shape != expected[key].shape
    ]
    parts = []
    if missing:
        parts.append(f"missing {_listed(missing)}")
    if unexpected:
        parts.append(f"unexpected {_listed(unexpected)}")
    if shapes:
        parts.append(f"shape of {_listed(shapes)} (file vs model)")
    return parts


def load_module_weights(module: nn.Module, path: str, *, field: str, name: str) -> None:
    """Load `module` (the model's sub-module `name`) strictly from `path`: its own state dict,
    or a whole model's (an OpenAV AVModel, an avbench checkpoint) whose `name.` entries are taken."""
    file = Path(path).expanduser()
    state = read_state_dict(file, field)
    prefix = f"{name}."
    if any(key.startswith(prefix) for key in state):
        state = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    problems = mismatches(module.state_dict(), state)
    if problems:
        raise ConfigError(f"model_args.{field}: {path} does not fit {name}: {'; '.join(problems)}")
    if any(param.is_meta for param in module.parameters()):
        return  # preflight's build on the meta device: the check above was the point
    module.load_state_dict(state, strict=True)
