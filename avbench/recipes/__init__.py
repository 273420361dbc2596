"""Recipes: what one run of an experiment does, stage by stage (data → model → train → record).

`run_recipe` is the one entry every caller uses (`avbench run`, cross-validation, the sweep
core, the followers of a data-parallel launch); it picks the recipe the model's objective needs:
avbench.recipes.classify for a classifier, avbench.recipes.audeep for an autoencoder whose
representations an MLP scores. The stages both share are in avbench.recipes.stages.
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
    from avbench.registry import MODELS

    if MODELS.get(experiment.model).objective == "reconstruction":
        from avbench.recipes.audeep import run_audeep as recipe
    else:
        from avbench.recipes.classify import run_classification as recipe
    return recipe(experiment, ctx, trial=trial, on_eval=on_eval, progress=progress)
