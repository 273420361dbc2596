"""What `avbench run` does once for a classifier, stage by stage:

prepare data → create_model(experiment, spec) → fit() → finalise the record.

The stages shared with other recipes (checks, data, the record, the Accelerator, the
out-of-memory retry, failures) are in avbench.recipes.stages; this module holds what is a
classifier's own: how its model is built and trained.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from avbench.config import TrainConfig
from avbench.recipes import OnEval
from avbench.recipes.stages import Prepared, Run, TrainStage, make_loaders, note_model

if TYPE_CHECKING:
    from avbench.train.loop import FitResult


def plan(prepared: Prepared) -> tuple[Prepared, TrainStage]:
    """A classifier trains on the prepared data as it is."""
    return prepared, train_classifier


def train_classifier(run: Run, accelerator, cfg: TrainConfig, on_epoch: OnEval) -> FitResult:
    """A fresh model from the run's seed, trained by fit() (resuming from the run's last.pt)."""
    from accelerate.utils import set_seed

    from avbench.data.device_inputs import DeviceInputs
    from avbench.models import create_model
    from avbench.train.cost import first_clip, reset_peak_memory, to_device
    from avbench.train.loop import fit

    set_seed(cfg.seed)
    model = create_model(run.experiment, run.data.spec, checked_args=run.model_args)
    note_model(run.record, model)
    if cfg.init_from is not None:
        from avbench.train.warm_start import warm_start

        run.record.weights = f"warm start from {cfg.init_from} ({warm_start(model, cfg)} tensors)"
    loaders = make_loaders(run.data, cfg)
    inputs = batch_pipeline(run)
    device_inputs = DeviceInputs.of(run.data)
    reset_peak_memory(accelerator.device)
    started = time.perf_counter()
    result = fit(
        model,
        loaders,
        cfg,
        accelerator,
        num_classes=run.data.spec.num_classes,
        checkpoint_dir=run.out_dir,
        on_eval=on_epoch,
        inputs=inputs,
        device_inputs=device_inputs,
    )
    features = inputs.eval if inputs is not None else None
    clip = device_inputs(to_device(first_clip(loaders["test"]), accelerator.device))
    note_cost(run.record, model, clip, accelerator.device, time.perf_counter() - started, features)
    return result


def batch_pipeline(run: Run):
    """The experiment's augmentation pipeline (None when off), with its per-dataset statistics
    when it normalises with them; the record lists what it runs."""
    from avbench.augment import build_pipeline, with_dataset_statistics

    pipeline = build_pipeline(run.experiment)
    if pipeline is None:
        return None
    if run.experiment.augment.normalise == "dataset":
        with_dataset_statistics(pipeline, run.experiment, run.data.splits["train"], run.ctx.results)
    run.record.augment = pipeline.ran
    return pipeline


def note_cost(record, model, clip: dict, device, train_time_s: float, features=None) -> None:
    """Training time, peak memory and latency per clip (`clip`: one test example on the device)
    of the best weights, for objectives beside accuracy (`--objective latency_ms:min`). `features`
    turns the cached clip into the model's input as evaluation does (the in-batch log-mel,
    normalisation), untimed."""
    from avbench.train.cost import latency_ms, peak_memory_mb

    record.train_time_s = round(train_time_s, 3)
    record.peak_memory_mb, record.peak_memory_kind = peak_memory_mb(device)
    record.latency_ms = latency_ms(model, clip, device, prepare=features)
