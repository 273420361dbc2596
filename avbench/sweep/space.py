"""Nulls → search space. Ranges come from the experiment's sweep file (found by avbench.catalog;
W&B sweep-config vocabulary, so one file drives both backends) or from per-parameter defaults.

A null with no range, or a range for a field that is not null, is an error; every bound and
choice is type-checked against the schema before any trial trains.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avbench.catalog import describe, sweep_file_for
from avbench.config import LoadedExperiment, read_mapping, validate
from avbench.dotted import set_dotted
from avbench.errors import ConfigError
from avbench.registry import did_you_mean


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # categorical | int | float
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    # A conditional choice: the parameters searched only when this parameter takes that value
    # (choice → {name: Param}); empty for an ordinary parameter.
    branches: dict[Any, dict[str, Param]] = field(default_factory=dict, compare=False)

    def describe(self) -> str:
        """The range, and every branch's ranges (so a conditional space fingerprints whole)."""
        text = self.describe_range()
        for choice, branch in self.branches.items():
            inner = ", ".join(f"{p.name}: {p.describe()}" for p in branch.values())
            text += f"; {choice} → {{{inner}}}"
        return text

    def describe_range(self) -> str:
        if self.kind == "categorical":
            return "one of " + ", ".join(map(str, self.choices))
        scale = "log-uniform" if self.log else "uniform"
        step = f", step {self.step}" if self.step else ""
        return f"{self.kind} {scale} [{self.low}, {self.high}]{step}"

    def grid_size(self) -> int | None:
        if self.branches:  # each choice counts the combinations of its own branch
            sizes = [_combinations(self.branches.get(choice, {})) for choice in self.choices]
            return None if None in sizes else sum(sizes)
        if self.kind == "categorical":
            return len(self.choices)
        if self.kind == "int" and not self.log:
            return int(self.high - self.low) // int(self.step or 1) + 1
        return None


@dataclass
class SearchSpace:
    params: dict[str, Param]
    method: str = "bayes"
    metric: str = "val/acc"
    goal: str = "maximize"
    early_terminate: dict[str, Any] = field(default_factory=dict)
    source: str = "defaults"
    origins: dict[str, str] = field(default_factory=dict)  # parameter → where its range was written

    # Searched fields that only some branches search, with the schema default the others train with.
    absent_defaults: dict[str, Any] = field(default_factory=dict)

    def grid_size(self) -> int | None:
        return _combinations(self.params)

    @property
    def conditional(self) -> bool:
        return any(p.branches for p in self.params.values())

    def complete(self, values: dict[str, Any]) -> dict[str, Any]:
        """A trial's drawn values plus the schema defaults of the fields its branch does not search."""
        return {**{k: v for k, v in self.absent_defaults.items() if k not in values}, **values}


def _combinations(params: dict[str, Param]) -> int | None:
    sizes = [p.grid_size() for p in params.values()]
    return math.prod(sizes) if all(s is not None for s in sizes) else None


DISTRIBUTIONS = (
    "categorical",
    "constant",
    "int_uniform",
    "uniform",
    "log_uniform_values",
    "q_uniform",
    "q_log_uniform_values",
)


def _flatten_parameters(parameters: dict[str, Any], prefix: str = "") -> dict[str, dict]:
    """W&B allows nesting (`train: {parameters: {lr: {...}}}`) as well as dotted names."""
    flat: dict[str, dict] = {}
    for name, spec in parameters.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"sweep parameter '{prefix}{name}' must be a mapping")
        if "parameters" in spec:
            flat.update(_flatten_parameters(spec["parameters"], f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = spec
    return flat


def _distribution(name: str, spec: dict) -> str:
    """The spec's distribution, written or (as W&B does) implied by its keys."""
    dist = spec.get("distribution")
    if dist is None:
        if "values" in spec:
            dist = "categorical"
        elif "value" in spec:
            dist = "constant"
        elif isinstance(spec.get("min"), int) and isinstance(spec.get("max"), int):
            dist = "int_uniform"
        elif "min" in spec and "max" in spec:
            dist = "uniform"
    if dist not in DISTRIBUTIONS:
        raise ConfigError(
            f"sweep parameter '{name}': unsupported distribution {dist!r}{did_you_mean(str(dist), DISTRIBUTIONS)}"
        )
    return dist


def parse_param(name: str, spec: dict) -> Param:
    dist = _distribution(name, spec)
    if dist == "categorical" and isinstance(spec.get("values"), dict):
        return _conditional_param(name, spec["values"])
    if dist == "categorical":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep parameter '{name}': 'values' must be a non-empty list")
        return Param(name, "categorical", choices=tuple(values))
    if dist == "constant":
        return Param(name, "categorical", choices=(spec.get("value"),))
    return _numeric_param(name, spec, dist)


def _conditional_param(name: str, values: dict) -> Param:
    """`values: {choice: {param: range, ...}, ...}`: each choice searches its own parameters."""
    if not values:
        raise ConfigError(f"sweep parameter '{name}': 'values' must not be empty")
    branches: dict[Any, dict[str, Param]] = {}
    for choice, sub in values.items():
        if sub is None:
            sub = {}
        if not isinstance(sub, dict):
            raise ConfigError(f"sweep parameter '{name}': what {choice!r} searches must be a mapping of parameters")
        flat = _flatten_parameters(sub)
        if name in flat:
            raise ConfigError(f"sweep parameter '{name}': {choice!r} cannot search '{name}' itself")
        if flat:
            branches[choice] = {inner: parse_param(inner, spec) for inner, spec in flat.items()}
    return Param(name, "categorical", choices=tuple(values), branches=branches)


def _numeric_param(name: str, spec: dict, dist: str) -> Param:
    try:
        low, high = float(spec["min"]), float(spec["max"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"sweep parameter '{name}': needs numeric 'min' and 'max'") from None
    if low > high:
        raise ConfigError(f"sweep parameter '{name}': min {low} is above max {high}")
    log = dist in ("log_uniform_values", "q_log_uniform_values")
    if log and low <= 0:
        raise ConfigError(f"sweep parameter '{name}': log-uniform needs min > 0")
    step = spec.get("q") if dist.startswith("q_") else None
    if dist == "int_uniform":
        return Param(name, "int", low=int(low), high=int(high))
    return Param(name, "float", low=low, high=high, log=log, step=step)


def walk(params: dict[str, Param], prefix: str = "") -> Iterator[tuple[str, Param]]:
    """Every parameter, those inside branches too, with its engine key: a branch's parameter is
    keyed by the choice that searches it (`train.optimizer=lion/train.lr`), so the sampler
    models each branch's range apart."""
    for param in params.values():
        key = prefix + param.name
        yield key, param
        for choice, branch in param.branches.items():
            yield from walk(branch, f"{key}={choice}/")


def plain_name(key: str) -> str:
    """The config field an engine key sets (the key less its branch path)."""
    return key.rsplit("/", 1)[-1]


def default_ranges() -> dict[str, Param]:
    """Ranges of the fields a sweep file may leave out (avbench.sweep.ranges, which builds on Param)."""
    from avbench.sweep.ranges import DEFAULT_RANGES

    return DEFAULT_RANGES


def resolve_space(loaded: LoadedExperiment, sweep_file: Path | None = None) -> SearchSpace:
    path = sweep_file or sweep_file_for(loaded.name)
    raw: dict[str, Any] = read_mapping(path) if path else {}
    declared = {
        name: parse_param(name, spec) for name, spec in _flatten_parameters(raw.get("parameters") or {}).items()
    }
    nested = _nested_names(declared, path)
    for name in [*declared, *nested]:
        if name not in loaded.searched:
            hint = " (it is not null in the experiment)" if _is_config_path(loaded, name) else ""
            raise ConfigError(
                f"{path}: range for '{name}' which is not a searched field{hint}; "
                f"searched fields: {', '.join(loaded.searched) or 'none'}"
            )
    params: dict[str, Param] = {}
    origins: dict[str, str] = {}
    model_ranges = _model_ranges(loaded) if set(loaded.searched) - set(declared) - set(nested) else {}
    for name in loaded.searched:
        if name in declared:
            params[name], origins[name] = declared[name], describe(path)
        elif name in nested:
            origins[name] = describe(path)  # the dry run's tree shows under which choice
        elif name in model_ranges:
            params[name] = parse_param(name, model_ranges[name])
            origins[name] = f"model '{loaded.config.model}' default"
        elif name in default_ranges():
            params[name], origins[name] = default_ranges()[name], "built-in default"
        else:
            raise ConfigError(
                f"'{name}' is null (searched) but has no range: add it to "
                f"{path or Path('sweeps') / (loaded.name + '.yaml')} under 'parameters'"
            )
    metric = raw.get("metric") or {}
    space = SearchSpace(
        params=params,
        method=raw.get("method", "bayes"),
        metric=metric.get("name", f"val/{loaded.config.train.metric}"),
        goal=metric.get("goal", "maximize"),
        early_terminate=raw.get("early_terminate") or {},
        source=describe(path) if path else "defaults",
        origins=origins,
        absent_defaults=_absent_defaults(loaded, params, path),
    )
    _check_method_and_metric(loaded, space, path)
    _type_check(loaded, space)
    return space


def _nested_names(declared: dict[str, Param], path: Path | None) -> dict[str, str]:
    """The fields searched inside branches → the parameter whose choices search them."""
    nested: dict[str, str] = {}

    def visit(params: dict[str, Param], parent: str | None) -> None:
        for param in params.values():
            if parent is not None:
                if param.name in declared:
                    raise ConfigError(
                        f"{path}: '{param.name}' has a range both at the top and under '{parent}': keep one of them"
                    )
                nested.setdefault(param.name, parent)
            for branch in param.branches.values():
                visit(branch, param.name)

    visit(declared, None)
    return nested


def _absent_defaults(loaded: LoadedExperiment, params: dict[str, Param], path: Path | None) -> dict[str, Any]:
    """The schema default of each field some branch of its parameter leaves unsearched."""
    defaults: dict[str, Any] = {}
    for _, param in walk(params):
        if not param.branches:
            continue
        named = {name for branch in param.branches.values() for name in branch}
        for name in named:
            if all(name in param.branches.get(choice, {}) for choice in param.choices):
                continue
            default = _schema_default(loaded, name)
            if default is _NO_DEFAULT:
                raise ConfigError(
                    f"{path}: '{name}' is searched only for some values of '{param.name}' and has no default "
                    "for the others: give it a range under every value"
                )
            defaults[name] = default
    return defaults


_NO_DEFAULT = object()


def _schema_default(loaded: LoadedExperiment, name: str) -> Any:
    raw = copy.deepcopy(loaded.raw)
    _drop_searched(raw, loaded.searched)
    node: Any = validate(raw, loaded.source)
    for part in name.split("."):
        if isinstance(node, dict):
            if part not in node:
                return _NO_DEFAULT
            node = node[part]
        elif hasattr(node, part):
            node = getattr(node, part)
        else:
            return _NO_DEFAULT
    return node


def _check_method_and_metric(loaded: LoadedExperiment, space: SearchSpace, path: Path | None) -> None:
    if space.method not in ("grid", "random", "bayes"):
        raise ConfigError(f"{path}: method must be grid, random or bayes, got {space.method!r}")
    expected = f"val/{loaded.config.train.metric}"
    if space.metric != expected or space.goal != "maximize":
        # The metric that picks the best epoch must be the one the sweep optimises.
        raise ConfigError(
            f"{path}: metric must be {{name: {expected}, goal: maximize}} to match "
            f"train.metric, got {{name: {space.metric}, goal: {space.goal}}}"
        )


def _model_ranges(loaded: LoadedExperiment) -> dict[str, dict]:
    """The ranges the experiment's model declares for its searchable fields (register_model's
    `search`); an unknown model gives none here and fails with its did-you-mean elsewhere."""
    from avbench.registry import MODELS

    if loaded.config.model not in MODELS:
        return {}
    return MODELS.get(loaded.config.model).search


def _is_config_path(loaded: LoadedExperiment, name: str) -> bool:
    node: Any = loaded.raw
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _type_check(loaded: LoadedExperiment, space: SearchSpace) -> None:
    """Resolve the config with each bound/choice so a bad range fails before training. Each
    value is tried with the other searched fields at their schema defaults, so an error is
    blamed on the parameter whose range allows the bad value, not on whichever came first."""
    for _, param in walk(space.params):
        candidates = list(param.choices) if param.kind == "categorical" else [param.low, param.high]
        if param.kind == "int":
            candidates = [int(c) for c in candidates]
        for value in candidates:
            try:
                _resolve_alone(loaded, param.name, value)
            except ConfigError as exc:
                raise ConfigError(f"sweep range for '{param.name}' allows {value!r}: {exc}") from None


def _resolve_alone(loaded: LoadedExperiment, name: str, value: Any) -> None:
    raw = copy.deepcopy(loaded.raw)
    _drop_searched(raw, [other for other in loaded.searched if other != name])
    set_dotted(raw, name, value)
    validate(raw, loaded.source)


def _drop_searched(raw: dict[str, Any], names: list[str]) -> None:
    for name in names:
        parent = raw
        *sections, leaf = name.split(".")
        for section in sections:
            parent = parent[section]
        del parent[leaf]  # absent: the schema default, which is valid by construction


def representative(param: Param) -> Any:
    """The middle of a range (geometric for log scales), or the middle choice: a typical
    trial's value, for estimates and for preparing data before the sweep starts."""
    if param.kind == "categorical":
        return param.choices[len(param.choices) // 2]
    middle = math.sqrt(param.low * param.high) if param.log else (param.low + param.high) / 2
    return int(round(middle)) if param.kind == "int" else middle
