"""The auDeep pipeline as one run (one sweep trial) of a reconstruction model such as `audeep`:

prepare the spectrograms of every clip → create_model → train the autoencoder on the clips
of every fold (labels never used; a held-out tenth picks its epoch) → encode every clip →
cross-validate auDeep's MLP on the representations → finalise the record.

The run's val and test metrics are the MLP's means over folds (± std), with the
autoencoder's own loss beside them as `reconstruction_loss`. See avbench.audeep.pipeline.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from avbench.config import Experiment, TrainConfig
from avbench.context import RunContext, TrialInfo
from avbench.recipes import OnEval, Progress
from avbench.recipes.stages import Run, execute, make_loaders, note_model, prepare, start_run
from avbench.results.records import RunRecord

if TYPE_CHECKING:
    from avbench.audeep.pipeline import Clips
    from avbench.train.loop import FitResult


def run_audeep(
    experiment: Experiment,
    ctx: RunContext,
    *,
    trial: TrialInfo,
    on_eval: OnEval | None = None,
    progress: Progress | None = None,
) -> RunRecord:
    """Train the autoencoder and score its representations once; the record says how it ended."""
    from avbench.audeep.pipeline import Clips, autoencoder_data
    from avbench.distributed import join_ranks

    ranks = join_ranks()
    prepared = prepare(experiment, ctx, progress)
    clips = prepared.clips or Clips.from_prepared(prepared.data, prepared.root)
    regrouped = autoencoder_data(clips, prepared.data, seed=prepared.experiment.data.split_seed)
    run = start_run(replace(prepared, data=regrouped), ctx, trial, ranks)
    return execute(run, partial(train_and_score, clips), on_eval)


def train_and_score(clips: Clips, run: Run, accelerator, cfg: TrainConfig, on_epoch: OnEval) -> FitResult:
    """The autoencoder trained on its reconstruction loss, then (unless pruned) its
    representations scored by the cross-validated MLP: those scores are the run's metrics."""
    from accelerate.utils import set_seed

    from avbench.audeep.pipeline import score_representations
    from avbench.audeep.training import fit_autoencoder
    from avbench.models import create_model

    set_seed(cfg.seed)
    model = create_model(run.experiment, run.data.spec, checked_args=run.model_args)
    note_model(run.record, model)
    loaders = make_loaders(run.data, cfg)
    result = fit_autoencoder(model, loaders, cfg, accelerator, checkpoint_dir=run.out_dir, on_eval=on_epoch)
    if result.stopped == "pruned":
        return result
    scored = score_representations(
        model, clips, run.experiment, run.out_dir, run_id=run.record.run_id, write_files=accelerator.is_main_process
    )
    run.record.cv = scored.cv_record(run.record.run_id)
    result.val = {**scored.val, "reconstruction_loss": result.val.get("loss")}
    result.test = {**scored.test, "reconstruction_loss": result.test.get("loss")}
    return result
