"""`sweep.objective: cv`: a trial is one cross-validation, scored by the mean validation metric
over its folds. Each fold's score is reported to the backend as one step (the fold number),
so a pruner that compares trials step by step (Optuna's WilcoxonPruner) can stop a trial that
loses fold by fold before its remaining folds train. No optuna here: the backend decides."""

from __future__ import annotations

import statistics

from avbench.config import Experiment
from avbench.context import RunContext, TrialInfo
from avbench.results.records import RunRecord
from avbench.sweep.core import Trial


def run_cv_trial(
    trial: Trial, experiment: Experiment, ctx: RunContext, info: TrialInfo, metric: str
) -> tuple[RunRecord, float | None]:
    """(the record that stands for the trial, its objective). Every fold keeps its own record
    (a `cv` group of the trial); the one returned is the last fold's, marked pruned when the
    backend stopped the trial early, so the study and the display see how it ended."""
    from avbench.crossval import fold_count, run_cross_validation

    folds = fold_count(experiment.task, experiment.data)

    def on_fold_end(fold: int, record: RunRecord) -> bool:
        if record.status != "completed" or metric not in record.val:
            return True
        return trial.report(fold, record.val[metric])

    outcome = run_cross_validation(experiment, ctx, group=f"cv-{info.run_id}", on_fold_end=on_fold_end, trial=info)
    last = outcome.records[-1]
    if last.status != "completed":
        return last, None
    scores = [r.val[metric] for r in outcome.records]
    if len(scores) < folds:
        return RunRecord.from_dict({**last.__dict__, "status": "pruned"}), None
    return last, statistics.fmean(scores)
