"""Cross-validation over a task's predefined folds (ESC-50's 5) or its speaker folds
(`data.folds`, CREMA-D and the other speaker-split tasks): one run per fold, reported
as mean ± std. Each fold is an ordinary run with `data.fold = k`, so every fold's record,
checkpoint and W&B run exist on their own; the records share a `cv` group that the
leaderboard folds back into one row."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from avbench.config import DataConfig, Experiment
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


def fold_count(task: str, data: DataConfig) -> int:
    """The folds to cross-validate over: the task's predefined ones, or its `data.folds` speaker folds."""
    count = TASKS.get(task)().folds_for(data)
    if not count:
        raise ConfigError(
            f"task '{task}' has no folds; cross-validation needs predefined ones (esc50, esc10) "
            "or data.folds (speaker folds: cremad, ravdess, audiofolder with data.speaker_regex, annotations)"
        )
    return count


def run_cross_validation(
    experiment: Experiment,
    ctx: RunContext,
    *,
    group: str,
    on_fold_end: Callable[[int, RunRecord], bool | None] | None = None,
    trial: TrialInfo | None = None,
) -> CrossValidation:
    """One run_recipe call per fold, each with the fold as its TrialInfo.cv (added to `trial`,
    a sweep's trial); `on_fold_end` returning True stops before the next fold (a pruned trial)."""
    from avbench.recipes import run_recipe
    from avbench.registry import MODELS

    if MODELS.get(experiment.model).objective == "reconstruction":
        raise ConfigError(
            f"model '{experiment.model}' cross-validates over every fold in each run already; run it without --cv"
        )
    folds = fold_count(experiment.task, experiment.data)
    outcome = CrossValidation(group)
    for fold in range(1, folds + 1):
        config = experiment.model_copy(deep=True)
        config.data.fold = fold
        cv = {"group": group, "fold": fold, "folds": folds}
        info = replace(trial or TrialInfo(), run_id=f"{group}-fold{fold}", cv=cv)
        record = run_recipe(config, ctx, trial=info)
        outcome.records.append(record)
        if on_fold_end and on_fold_end(fold, record):
            break
    return outcome
