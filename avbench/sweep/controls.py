"""`avbench control EXP`: the val-selected config trained on shuffled training labels.

A model that scores as well on labels it cannot learn from as on the real ones learnt the
split, not the task. The control re-trains the run the leaderboard selects for the
experiment (avbench.results.selection) with `data.shuffle_train_labels: true` (a fixed
permutation of the training labels under `data.split_seed`; validation and test keep theirs),
`seeds` times (train.seed + i). Its records have the data kind "<kind>, shuffled train
labels", so the leaderboard ranks them apart and sets the control row beside the real one.
Run ids are `control-<run id>` and `control-<run id>-r<i>` (replicates of the first): a
finished control is never trained again, a killed one resumes from its checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable

from avbench.config import LoadedExperiment
from avbench.context import RunContext, TrialInfo
from avbench.errors import AvbenchError
from avbench.results.records import RunRecord, read_records
from avbench.results.selection import select
from avbench.sweep.replicates import is_finished


def selected_run(loaded: LoadedExperiment, ctx: RunContext) -> RunRecord:
    """The experiment's val-selected run on this kind of data (synthetic or real)."""
    kind = "synthetic" if ctx.synthetic else "real"
    records, _ = read_records(ctx.results)
    mine = [
        r for r in records if r.experiment == loaded.name and r.data_kind == kind and not (r.cv and r.cv.get("fold"))
    ]
    selection = select(mine)
    if selection is None:
        raise AvbenchError(f"no completed {kind} run of {loaded.name} under {ctx.results}; run or sweep it first")
    return selection.best


def run_controls(
    loaded: LoadedExperiment,
    ctx: RunContext,
    *,
    seeds: int = 1,
    on_end: Callable[[RunRecord], None] | None = None,
) -> tuple[RunRecord, list[RunRecord]]:
    """(the selected run, the controls trained now) once `seeds` controls of it exist."""
    from avbench.recipes import run_recipe

    best = selected_run(loaded, ctx)
    first = f"control-{best.run_id}"
    trained = []
    for index in range(seeds):
        run_id = first if index == 0 else f"{first}-r{index}"
        if is_finished(ctx.results, loaded.name, run_id):
            continue
        experiment = loaded.resolve(best.searched)
        experiment.train.seed = best.seed + index
        experiment.data.shuffle_train_labels = True
        info = TrialInfo(
            searched=dict(best.searched),
            run_id=run_id,
            replicate_of=first if index else None,
            replicate=index or None,
        )
        record = run_recipe(experiment, ctx, trial=info)
        trained.append(record)
        if on_end:
            on_end(record)
    return best, trained
