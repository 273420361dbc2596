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

from avbench.config import TrainConfig
from avbench.recipes import OnEval
from avbench.recipes.stages import Prepared, Run, TrainStage, make_loaders, note_model

if TYPE_CHECKING:
    from avbench.audeep.pipeline import Clips
    from avbench.train.loop import FitResult


def plan(prepared: Prepared) -> tuple[Prepared, TrainStage]:
    """The autoencoder trains on the clips of every fold (a held-out tenth picks its epoch);
    the MLP that scores it then cross-validates over the folds."""
    from avbench.audeep.pipeline import Clips, autoencoder_data
    from avbench.errors import ConfigError

    if prepared.experiment.augment.active():
        raise ConfigError("augment: the auDeep recipe trains its autoencoder on the clips as they are; remove augment")
    clips = prepared.clips or Clips.from_prepared(prepared.data, prepared.root)
    regrouped = autoencoder_data(clips, prepared.data, seed=prepared.experiment.data.split_seed)
    return replace(prepared, data=regrouped), partial(train_and_score, clips)


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
