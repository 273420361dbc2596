"""Conditional search spaces: drawing a trial's values down the branches, the flat space a
W&B engine can take instead, and mapping another study's values onto this space (warm starts).

A conditional parameter is a categorical one whose choices each search their own parameters
(avbench.sweep.space parses them); a trial draws the parameter, then only the parameters of
the branch it drew. No engine is imported here: a backend passes its own `pick`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from avbench.errors import ConfigError
from avbench.sweep.space import Param, SearchSpace, representative, walk

# (parameter, its engine key) → the value the engine suggests for it
Pick = Callable[[Param, str], Any]


def draw(params: dict[str, Param], pick: Pick, prefix: str = "") -> dict[str, Any]:
    """Define-by-run: each parameter, then the parameters of the branch its value opens."""
    values: dict[str, Any] = {}
    for param in params.values():
        key = prefix + param.name
        value = pick(param, key)
        values[param.name] = value
        branch = param.branches.get(value) if param.branches else None
        if branch:
            values.update(draw(branch, pick, f"{key}={value}/"))
    return values


def representative_values(space: SearchSpace) -> dict[str, Any]:
    """A typical trial's complete values (the middle of every range it draws)."""
    return space.complete(draw(space.params, lambda param, _key: representative(param)))


def first_values(space: SearchSpace) -> dict[str, Any]:
    """Every range's first value (a fallback where the middle of each range is infeasible)."""
    return space.complete(draw(space.params, lambda p, _key: p.choices[0] if p.kind == "categorical" else p.low))


def tree_rows(params: dict[str, Param], depth: int = 0) -> list[tuple[int, Any, Param]]:
    """(depth, the choice opening it, parameter) rows, each branch's parameters right under the
    parameter whose choice opens them (the choice is None at the top)."""
    rows: list[tuple[int, Any, Param]] = []
    for param in params.values():
        rows.append((depth, None, param))
        for choice, branch in param.branches.items():
            for inner_depth, opened_by, inner in tree_rows(branch, depth + 1):
                rows.append((inner_depth, choice if opened_by is None else opened_by, inner))
    return rows


def flat_equivalent(space: SearchSpace) -> tuple[SearchSpace, list[str]]:
    """The space with every branch's parameters lifted to the top, for engines without
    conditions (W&B): a field searched under several choices gets one range covering all of
    them. Refused where the branches' ranges cannot be joined (a number range and a list of
    choices, or a log and a linear scale)."""
    if not space.conditional:
        return space, []
    flat: dict[str, Param] = {}
    notes: list[str] = []
    for key, param in walk(space.params):
        plain = replace(param, branches={})
        if "/" not in key:
            flat[param.name] = plain
        elif param.name in flat and flat[param.name] != plain:
            flat[param.name] = _join(flat[param.name], plain)
        else:
            flat.setdefault(param.name, plain)
    for name, param in flat.items():
        if name not in space.params:
            notes.append(
                f"W&B sweeps have no conditional parameters: '{name}' is searched over {param.describe_range()} "
                "for every choice (its branches' ranges joined), also where its branch does not search it"
            )
    return replace(space, params=flat, absent_defaults={}), notes


def _join(a: Param, b: Param) -> Param:
    if a.kind != b.kind or a.log != b.log or a.step != b.step:
        raise ConfigError(
            f"'{a.name}' is {a.describe_range()} in one branch and {b.describe_range()} in another: W&B sweeps "
            "have no conditional parameters and these ranges have no flat equivalent; use --backend optuna"
        )
    if a.kind == "categorical":
        return replace(a, choices=tuple(dict.fromkeys([*a.choices, *b.choices])))
    return replace(a, low=min(a.low, b.low), high=max(a.high, b.high))


def map_onto(space: SearchSpace, values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Another trial's values as engine keys of this space: a number outside its range is
    clipped, a choice this space lacks is dropped (and with it its branch), a field this space
    does not search is ignored; what is left out is drawn by the sampler. Returns the keys and
    a note per clipped or dropped value."""
    mapped: dict[str, Any] = {}
    notes: list[str] = []

    def visit(params: dict[str, Param], prefix: str) -> None:
        for param in params.values():
            if param.name not in values:
                continue
            key, value = prefix + param.name, _fit(param, values[param.name], notes)
            if value is None:
                continue
            mapped[key] = value
            if param.branches and value in param.branches:
                visit(param.branches[value], f"{key}={value}/")

    visit(space.params, "")
    return mapped, notes


def _fit(param: Param, value: Any, notes: list[str]) -> Any:
    if param.kind == "categorical":
        if value in param.choices:
            return value
        notes.append(f"{param.name}={value} is not among this space's choices: dropped")
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        notes.append(f"{param.name}={value!r} is not a number: dropped")
        return None
    clipped = min(max(value, param.low), param.high)
    if clipped != value:
        notes.append(f"{param.name}={value} is outside [{param.low}, {param.high}]: clipped to {clipped}")
    return int(round(clipped)) if param.kind == "int" else float(clipped)
