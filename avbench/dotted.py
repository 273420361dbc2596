"""Dotted keys in nested mappings ('train.lr'): `--set` overrides, merging presets over an
experiment, and the leaves set to null that a sweep searches. Plain dicts only: no schema.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from avbench.errors import ConfigError


def parse_override(text: str) -> tuple[str, Any]:
    """'train.lr=3e-4' → ('train.lr', 0.0003); the value is parsed with yaml.safe_load."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects dotted.key=value, got '{text}'")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ConfigError(f"--set {key}: cannot parse value '{raw}'") from None
    if isinstance(value, str) and _looks_numeric(value):
        value = float(value)  # yaml 1.1 reads '3e-4' as a string
    return key.strip(), value


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def set_dotted(mapping: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = mapping
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set '{key}': '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def find_nulls(mapping: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of every leaf explicitly set to null: the searched hyperparameters."""
    found: list[str] = []
    for key, value in mapping.items():
        if key == "presets":
            continue
        path = f"{prefix}{key}"
        if value is None:
            found.append(path)
        elif isinstance(value, dict):
            found.extend(find_nulls(value, path + "."))
    return found
