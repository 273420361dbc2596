"""Samplers and pruners by name, seeded so a sweep can be repeated.

The sampler is rebuilt for every trial with a seed derived from `sweep.seed` and the number
of trials already in the study (the grid keeps `sweep.seed`, which orders its points). With
one worker the same seed gives the same sequence of suggestions; with several workers, or
after a restart, every trial still draws from a different seed, so no two workers (and no
resumed sweep) replay the same random suggestions.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import optuna
from optuna.exceptions import ExperimentalWarning

from avbench.errors import ConfigError
from avbench.sweep.space import SearchSpace

SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp", "nsga2", "auto")
METHOD_SAMPLER = {"bayes": "tpe", "random": "random", "grid": "grid"}
SINGLE_OBJECTIVE = ("cmaes",)  # Optuna's CMA-ES optimises one objective


def sampler_name(space: SearchSpace, requested: str | None, *, objectives: int = 1, trials: int | None = None) -> str:
    """--sampler beats the sweep file's `method`; `auto` is resolved by auto_sampler."""
    if requested == "auto":
        return auto_sampler(space, objectives=objectives, trials=trials)
    return requested or METHOD_SAMPLER[space.method]


def auto_sampler(space: SearchSpace, *, objectives: int, trials: int | None) -> str:
    """The rule of `--sampler auto`: NSGA-II with several objectives; the grid when the space
    is finite, unconditional and no larger than the trial budget (every point gets tried);
    TPE otherwise."""
    if objectives > 1:
        return "nsga2"
    size = space.grid_size()
    if size is not None and not space.conditional and (trials is None or size <= trials):
        return "grid"
    return "tpe"


def trial_seed(base: int, trials_in_study: int) -> int:
    return (base * 1_000_003 + trials_in_study) % 2**32


def grid_of(space: SearchSpace) -> dict[str, list]:
    if space.conditional:
        raise ConfigError("the grid sampler cannot walk a conditional space; use tpe, random or gp")
    grid = {}
    for p in space.params.values():
        if p.grid_size() is None:
            raise ConfigError(f"the grid sampler needs finite choices, '{p.name}' is {p.describe()}")
        if p.kind == "categorical":
            grid[p.name] = list(p.choices)
        else:
            grid[p.name] = list(range(int(p.low), int(p.high) + 1, int(p.step or 1)))
    return grid


def check_sampler(space: SearchSpace, name: str, objectives: int = 1) -> list[str]:
    """Fail early on a sampler the space cannot use; return notes worth telling the user."""
    if objectives > 1 and name in SINGLE_OBJECTIVE:
        raise ConfigError(f"the {name} sampler optimises one objective; with several use nsga2, tpe, gp or random")
    if name == "gp" and space.conditional:
        return ["gp models every parameter jointly; a branch's parameters are drawn by its random fallback sampler"]
    if name == "grid":
        grid_of(space)
        return []
    if name != "cmaes":
        return []
    categorical = [p.name for p in space.params.values() if p.kind == "categorical"]
    if len(categorical) == len(space.params):
        raise ConfigError(
            "the cmaes sampler needs at least one numeric (min/max) parameter; "
            f"{', '.join(categorical)} are all categorical"
        )
    if categorical:
        return [
            f"cmaes searches the numeric parameters; {', '.join(categorical)} "
            "(categorical) are drawn by its random fallback sampler"
        ]
    return []


def tpe_sampler(space: SearchSpace, seed: int) -> optuna.samplers.TPESampler:
    """Multivariate TPE over groups for a conditional space, as Optuna advises for one: the
    parameters trials draw together (a branch's lr and momentum) are modelled jointly, each
    group from the trials that drew it. Without `group`, multivariate TPE models only the
    parameters every trial has and draws each branch's parameters one by one."""
    if not space.conditional:
        return optuna.samplers.TPESampler(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler calls Study.stop() after the last point, which works only inside
    Study.optimize; our worker loop asks is_exhausted() itself before each claim."""

    def after_trial(self, study, trial, state, values) -> None:
        return None


def make_sampler(space: SearchSpace, name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return _GridSampler(grid_of(space), seed=seed)
    if name == "cmaes":
        # CMA-ES handles float and int parameters; Optuna hands categorical ones to the
        # independent sampler (told once by check_sampler, not warned about every trial).
        return optuna.samplers.CmaEsSampler(
            seed=seed,
            independent_sampler=optuna.samplers.RandomSampler(seed=seed),
            warn_independent_sampling=False,
        )
    if name == "tpe":
        return tpe_sampler(space, seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "gp":
        # Optuna's GP reads the constraint avbench sets on an infeasible suggestion
        # (Trial.set_constraint) as it learns; its random fallback draws what it cannot model.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            return optuna.samplers.GPSampler(
                seed=seed,
                independent_sampler=optuna.samplers.RandomSampler(seed=seed),
                warn_independent_sampling=False,
            )
    raise ConfigError(f"unknown sampler '{name}' (choose from: {', '.join(SAMPLERS)})")


# The median pruner compares a trial with the median of the finished trials at the same epoch:
# it waits for this many (Optuna's default; the median of fewer curves is noise) ...
MEDIAN_STARTUP_TRIALS = 5


def median_warmup_epochs(epochs: int | None) -> int:
    """... and prunes no trial before this epoch, a third into training (at least 2): a net
    trained from scratch may sit at chance through the learning-rate warm-up and then overtake
    the rest. Measured on benchmarks/sweep_pruning.py's sweep (24 trials of 10 epochs): from
    epoch 2 on, the median pruner cut the best trial at epoch 2 (still at chance; it ended at
    0.92 val/acc, the best kept 0.81); from epoch 3 on, with 5 startup trials, it kept it."""
    return max(2, (epochs or 0) // 3)


def make_pruner(
    name: str | None, default: str, space: SearchSpace, epochs: int | None, objective: str = "val"
) -> optuna.pruners.BasePruner:
    """--pruner beats the sweep file's early_terminate, which beats the experiment's sweep.pruner.
    A cross-validated objective reports folds, not epochs: WilcoxonPruner compares them with
    the best trial's, fold by fold (a signed-rank test; --pruner none turns it off)."""
    if objective == "cv":
        if name == "none":
            return optuna.pruners.NopPruner()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            return optuna.pruners.WilcoxonPruner(p_threshold=0.1)
    if name is None:
        name = "hyperband" if space.early_terminate.get("type") == "hyperband" else default
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=int(space.early_terminate.get("min_iter", 1)))
    return ResolvedMedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=median_warmup_epochs(epochs))


# The number of validation examples a trial's metric is scored on, kept as its user attribute.
VAL_EXAMPLES = "val_examples"


class ResolvedMedianPruner(optuna.pruners.MedianPruner):
    """Optuna's median pruner, stopping a trial only when its best value so far is below the
    median of the finished trials at that epoch by more than the validation split can resolve:
    one binomial standard error at the median, sqrt(m (1 - m) / n), n the trial's validation
    examples (accuracy, UAR and F1 are proportions). On 1 000 clips that is 0.016 at m = 0.5,
    so the rule is Optuna's; on 12 clips it is 0.14, and the plain median pruner stopped
    trials one or two clips below a median that a better sampler had pushed up."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if not super().prune(study, trial):
            return False
        examples, step = trial.user_attrs.get(VAL_EXAMPLES), trial.last_step
        if not examples or step is None:
            return True
        finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        at_step = [t.intermediate_values[step] for t in finished if step in t.intermediate_values]
        median = float(np.nanmedian(at_step))
        margin = math.sqrt(max(median * (1 - median), 0.0) / examples)  # 0 outside [0, 1]
        values = [v for v in trial.intermediate_values.values() if not math.isnan(v)]
        if not values:  # only NaN so far: pruned, as Optuna's median pruner does
            return True
        if study.direction == optuna.study.StudyDirection.MAXIMIZE:
            return max(values) < median - margin
        return min(values) > median + margin


def is_grid_exhausted(sampler: optuna.samplers.BaseSampler, study: optuna.Study) -> bool:
    if not isinstance(sampler, optuna.samplers.GridSampler):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return sampler.is_exhausted(study)
