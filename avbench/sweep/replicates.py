"""Replicates: the best trials of a study trained again with other seeds, so the leaderboard
reports a distribution instead of one lucky run.

For each of the `top` best trials (avbench.results.selection: validation metric, then loss)
replicates 1 … K−1 re-train its searched values with `train.seed` = the trial's seed + i
(which also reseeds the training data order); the split stays fixed unless `resplit` moves
`data.split_seed` by i too. A task with predefined folds (ESC) replicates over folds × seeds:
every fold with seeds 0 … K−1 past the trial's, the trial itself standing for its own fold at
seed 0.

Each replicate is an ordinary run through run_recipe with the run id `<trial run id>-r<i>`,
its record naming the trial (`replicate_of`, `replicate`): a finished replicate is never
trained again, raising K later trains only the new ones, and a replicate that was killed
resumes from its last epoch checkpoint, as trials do. Records only: any backend's study works.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from avbench.config import Experiment, LoadedExperiment
from avbench.context import RunContext, TrialInfo
from avbench.errors import AvbenchError
from avbench.results.layout import run_files
from avbench.results.records import FINISHED, RunRecord, read_record, read_records
from avbench.results.selection import rankable, selection_key


@dataclass(frozen=True)
class Replicate:
    """One replicate to have: of which trial, its index, and what it changes."""

    trial: RunRecord
    index: int
    seed: int
    fold: int | None = None  # a task with folds: the fold it trains on
    split_seed: int | None = None  # --resplit: the split it draws

    @property
    def run_id(self) -> str:
        return f"{self.trial.run_id}-r{self.index}"


def best_trials(results, experiment: str, study: str, top: int) -> list[RunRecord]:
    """The study's `top` best finished trials (originals, not replicates) by validation."""
    records, _ = read_records(results)
    trials = [r for r in records if r.experiment == experiment and r.sweep == study and rankable(r)]
    if not trials:
        raise AvbenchError(f"study {study} has no completed trial of {experiment} under {results}; run the sweep first")
    return sorted(trials, key=selection_key, reverse=True)[:top]


def plan_replicates(trial: RunRecord, experiment: Experiment, seeds: int, *, folds: int | None, resplit: bool):
    """The replicates that make `seeds` seeds of `trial` (× every fold when the task has folds)."""
    grid = [(s, f) for s in range(seeds) for f in range(1, folds + 1)] if folds else [(s, None) for s in range(seeds)]
    own = (0, experiment.data.fold if folds else None)
    wanted = [cell for cell in grid if cell != own]
    return [
        Replicate(
            trial,
            index,
            seed=trial.seed + s,
            fold=f,
            split_seed=experiment.data.split_seed + s if resplit else None,
        )
        for index, (s, f) in enumerate(wanted, start=1)
    ]


def replicate_config(loaded: LoadedExperiment, replicate: Replicate) -> Experiment:
    """The trial's config with the replicate's seed (and fold, and split)."""
    experiment = loaded.resolve(replicate.trial.searched)
    experiment.train.seed = replicate.seed
    if replicate.fold is not None:
        experiment.data.fold = replicate.fold
    if replicate.split_seed is not None:
        experiment.data.split_seed = replicate.split_seed
    return experiment


def is_finished(results, experiment: str, run_id: str) -> bool:
    path = run_files(results, experiment, run_id).record
    if not path.exists():
        return False
    try:
        return read_record(path).status in FINISHED
    except (OSError, AvbenchError):
        return False  # a damaged record: train it again (its run folder is rewritten)


def task_folds(task: str) -> int | None:
    from avbench.registry import TASKS

    return getattr(TASKS.get(task), "fold_count", None) or None


@dataclass(frozen=True)
class ReplicateRequest:
    """What `avbench replicate` (or `sweep --replicates`) was asked."""

    study: str
    top: int = 1
    seeds: int = 3  # K: the trial itself is seed 0, so K − 1 replicates (per fold with folds)
    resplit: bool = False


def run_replicates(
    loaded: LoadedExperiment,
    ctx: RunContext,
    request: ReplicateRequest,
    *,
    on_start: Callable[[Replicate], None] | None = None,
    on_end: Callable[[RunRecord], None] | None = None,
) -> list[RunRecord]:
    """Train every missing replicate of the study's best trials; the records of the ones run here."""
    from avbench.recipes import run_recipe

    trials = best_trials(ctx.results, loaded.name, request.study, request.top)
    folds = task_folds(loaded.config.task)
    done = []
    for trial in trials:
        base = loaded.resolve(trial.searched)
        for replicate in plan_replicates(trial, base, request.seeds, folds=folds, resplit=request.resplit):
            if is_finished(ctx.results, loaded.name, replicate.run_id):
                continue
            if on_start:
                on_start(replicate)
            info = TrialInfo(
                sweep=trial.sweep,
                number=trial.trial,
                searched=dict(trial.searched),
                run_id=replicate.run_id,
                replicate_of=trial.run_id,
                replicate=replicate.index,
            )
            record = run_recipe(replicate_config(loaded, replicate), ctx, trial=info)
            done.append(record)
            if on_end:
                on_end(record)
    return done
