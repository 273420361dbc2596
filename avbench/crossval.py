"""Cross-validation over a task's predefined folds (ESC-50's 5): one run per fold, reported
as mean ± std. Each fold is an ordinary run with `data.fold = k`, so every fold's record,
checkpoint and W&B run exist on their own; the records share a `cv` group that the
leaderboard folds back into one row."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from avbench.config import Experiment
from avbench.context import RunContext, TrialInfo
from avbench.errors import ConfigError
from avbench.registry import TASKS
from avbench.results.records import RunRecord
from avbench.spec import METRICS


@dataclass
class CrossValidation:
    group: str
    records: list[RunRecord] = field(default_factory=list)

    def summary(self, split: str) -> dict[str, tuple[float, float]]:
        """metric → (mean, std) over the folds that completed."""
        done = [r for r in self.records if r.status == "completed"]
        out = {}
        for metric in METRICS:
            values = [getattr(r, split)[metric] for r in done if metric in getattr(r, split)]
            if values:
                out[metric] = (statistics.fmean(values), statistics.pstdev(values))
        return out


def fold_count(task: str) -> int:
    count = getattr(TASKS.get(task), "fold_count", None)
    if not count:
        raise ConfigError(f"task '{task}' has no predefined folds; cross-validation needs one (e.g. esc50, esc10)")
    return count


def run_cross_validation(
    experiment: Experiment,
    ctx: RunContext,
    *,
    group: str,
    on_fold_end: Callable[[int, RunRecord], None] | None = None,
) -> CrossValidation:
    """One run_recipe call per fold, each with the fold as its TrialInfo.cv."""
    from avbench.recipes import run_recipe
    from avbench.registry import MODELS

    if MODELS.get(experiment.model).objective == "reconstruction":
        raise ConfigError(
            f"model '{experiment.model}' cross-validates over every fold in each run already; run it without --cv"
        )
    folds = fold_count(experiment.task)
    outcome = CrossValidation(group)
    for fold in range(1, folds + 1):
        config = experiment.model_copy(deep=True)
        config.data.fold = fold
        cv = {"group": group, "fold": fold, "folds": folds}
        record = run_recipe(config, ctx, trial=TrialInfo(run_id=f"{group}-fold{fold}", cv=cv))
        outcome.records.append(record)
        if on_fold_end:
            on_fold_end(fold, record)
    return outcome
