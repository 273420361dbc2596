"""Recipes: what one run of an experiment does, stage by stage (data → model → train → record).

`run_recipe` is the one entry every caller uses (`avbench run`, cross-validation, the sweep
core, the followers of a data-parallel launch); it picks the recipe the model's objective needs:
avbench.recipes.classify for a classifier, avbench.recipes.audeep for an autoencoder whose
representations an MLP scores. Each recipe's `plan(prepared)` gives the data it trains on and
its training stage; the stages both share are in avbench.recipes.stages.
"""

from __future__ import annotations

from collections.abc import Callable

from avbench.config import Experiment
from avbench.context import RunContext, TrialInfo
from avbench.results.records import RunRecord

OnEval = Callable[[int, dict], bool | None]  # (epoch, metrics) -> stop?
Progress = Callable[[int, int], None]  # (done, total) while the feature cache fills


def run_recipe(
    experiment: Experiment,
    ctx: RunContext,
    *,
    trial: TrialInfo = TrialInfo(),
    on_eval: OnEval | None = None,
    progress: Progress | None = None,
) -> RunRecord:
    """Train and evaluate once. User errors (config, data) raise; a failure during training
    is returned as a record with status 'failed' and its reason."""
    from avbench.distributed import join_ranks
    from avbench.recipes.stages import execute, prepare, start_run
    from avbench.registry import MODELS

    if MODELS.get(experiment.model).objective == "reconstruction":
        from avbench.recipes.audeep import plan
    else:
        from avbench.recipes.classify import plan
    ranks = join_ranks()
    prepared, train = plan(prepare(experiment, ctx, progress))
    run = start_run(prepared, ctx, trial, ranks)
    return execute(run, train, on_eval)
