"""The stages every recipe shares, in the order a run goes through them.

1. `prepare`: check the model's arguments and resolve its inputs (once per run), check that
   the model can be built with these values, find the data and read it through the cache;
2. `start_run`: the run's folder, its config.yaml and its record (status "running");
3. `execute`: one Accelerator, W&B when on, the recipe's training stage (retried once at half
   the micro-batch when it runs out of memory), then the finished record. A failure during
   training is a record with status "failed", not an exception.

Under torchrun / accelerate launch every rank runs the same stages; rank 0 alone writes
results, decides about stopping, and gives the run its id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from avbench.config import Experiment, TrainConfig
from avbench.context import RunContext, TrialInfo
from avbench.distributed import Ranks
from avbench.recipes import OnEval, Progress
from avbench.recipes.outputs import start_wandb, write_test_predictions, write_wandb_summary
from avbench.registry import MODELS
from avbench.results.layout import RunFiles, feature_cache_dir, run_dir
from avbench.results.records import RunRecord, new_run_id, write_rank_report, write_record

if TYPE_CHECKING:
    from avbench.audeep.pipeline import Clips
    from avbench.data.dataset import PreparedData
    from avbench.train.loop import FitResult


@dataclass
class Prepared:
    """A run's experiment and data, checked and read, before anything trains."""

    experiment: Experiment  # data.audio_feature resolved to what the model reads
    model_args: dict  # checked against the model's factory, defaults filled in
    root: Path
    data_kind: str
    data: PreparedData
    clips: Clips | None = None  # auDeep's clips when they come from a spectrogram file
    input_weights: str | None = None  # what a model's own input extractor loaded (a probe's frozen encoder)


def prepare(experiment: Experiment, ctx: RunContext, progress: Progress | None = None) -> Prepared:
    """Everything a user can get wrong fails here, in one line, before a model is built."""
    from avbench.audeep.spectrogram_input import clips_from_file, with_spectrogram_file
    from avbench.augment import cached_data, check_augment, model_spec
    from avbench.data.cache import FeatureCache
    from avbench.data.dataset import cache_workers, prepare_data
    from avbench.models import check_model_args
    from avbench.preflight import check_feasible, model_input_extractor, resolve_data_root, with_model_inputs
    from avbench.registry import TASKS

    experiment = with_spectrogram_file(experiment)
    model_args = check_model_args(experiment)
    experiment = with_model_inputs(experiment)
    check_feasible(experiment, model_args)
    if experiment.data.spectrograms is not None:  # auDeep's `t-rae train --input FILE.nc`: no dataset read
        data, clips, data_kind = clips_from_file(experiment)
        return Prepared(experiment, model_args, Path("."), data_kind, data, clips)
    check_augment(experiment)
    root, data_kind = resolve_data_root(experiment, synthetic=ctx.synthetic)
    cache = FeatureCache(feature_cache_dir(ctx.results), workers=cache_workers(experiment.data))
    audio = model_input_extractor(experiment, model_args, cache.root)
    data = prepare_data(TASKS.get(experiment.task)(), root, cached_data(experiment), cache, progress, audio=audio)
    data.spec = model_spec(experiment, data.spec)
    experiment = fit_to_heads(experiment, model_args, data)
    return Prepared(experiment, model_args, root, data_kind, data, input_weights=getattr(audio, "weights_source", None))


def fit_to_heads(experiment: Experiment, model_args: dict, data: PreparedData) -> Experiment:
    """The experiment with train.metric naming its head, once the data says which heads there
    are; a warm start's checkpoint is checked against the model here too, in one line."""
    from avbench.errors import ConfigError
    from avbench.models import create_model
    from avbench.train.heads import resolve_for_heads
    from avbench.train.warm_start import check_warm_start

    if data.spec.heads and MODELS.get(experiment.model).objective == "reconstruction":
        raise ConfigError(
            f"model '{experiment.model}' learns without labels; task '{experiment.task}' has several heads"
        )
    experiment = experiment.model_copy(update={"train": resolve_for_heads(experiment.train, data.spec)})
    check_warm_start(experiment.train, lambda: create_model(experiment, data.spec, checked_args=model_args))
    return experiment


@dataclass
class Run:
    """One run under way: what the training stage and the record share."""

    experiment: Experiment
    model_args: dict
    data: PreparedData
    ctx: RunContext
    trial: TrialInfo
    ranks: Ranks
    record: RunRecord
    out_dir: Path
    data_root: Path | None = None  # test clips are named relative to it in predictions.npz

    @property
    def metrics_file(self) -> Path:
        return RunFiles(self.out_dir).metrics

    def save_record(self) -> None:
        if self.ranks.is_main:
            write_record(self.ctx.results, self.record)

    def config(self) -> dict[str, Any]:
        return self.experiment.model_dump(exclude={"presets"})


def start_run(prepared: Prepared, ctx: RunContext, trial: TrialInfo, ranks: Ranks) -> Run:
    """The run's folder with its config.yaml and a "running" record."""
    from avbench.distributed import describe_devices
    from avbench.results.provenance import git_hash, versions

    experiment = prepared.experiment
    record = RunRecord(
        run_id=ranks.share(trial.run_id or new_run_id(trial.number)),
        experiment=experiment.name,
        task=experiment.task,
        model=experiment.model,
        data_kind=prepared.data_kind,
        preset=ctx.preset,
        sweep=trial.sweep,
        trial=trial.number,
        searched=dict(trial.searched or {}),
        metric=experiment.train.metric,
        seed=experiment.train.seed,
        data_sizes=prepared.data.sizes(),
        skipped_files=[list(s) for s in prepared.data.skipped],
        cache=prepared.data.cache,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        versions=versions(),
        git=git_hash(),
        cv=trial.cv,
        processes=ranks.count,
        devices=describe_devices(),
        weights=prepared.input_weights or "",
        data_scores=_data_scores(experiment, prepared),
        replicate_of=trial.replicate_of,
        replicate=trial.replicate,
        test_class_counts=test_class_counts(prepared.data, experiment.train.metric),
        leak_checks=list(prepared.data.leaks.checks),
        leaks=prepared.data.leaks.as_dict()["leaks"],
    )
    out_dir = run_dir(ctx.results, experiment.name, record.run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = Run(experiment, prepared.model_args, prepared.data, ctx, trial, ranks, record, out_dir, prepared.root)
    if ranks.is_main:
        RunFiles(run.out_dir).config.write_text(yaml.safe_dump(run.config(), sort_keys=False))
    run.save_record()
    return run


def test_class_counts(data: PreparedData, metric: str) -> list[int]:
    """Test examples per class of the head `metric` selects on (the majority-class baseline)."""
    import numpy as np

    from avbench.spec import split_metric

    head, _ = split_metric(metric)
    labels = data.splits["test"].labels
    sizes = data.spec.head_sizes()
    if head is not None and labels.ndim > 1:
        labels = labels[:, list(sizes).index(head)]
    return np.bincount(labels, minlength=sizes.get(head, data.spec.num_classes)).tolist()


def _data_scores(experiment: Experiment, prepared: Prepared) -> dict:
    """Scores of the prepared data that need no training (a probe's kNN), when the model has them."""
    score = MODELS.get(experiment.model).data_scores
    return score(prepared.data, prepared.model_args) if score else {}


def make_loaders(data: PreparedData, cfg: TrainConfig) -> dict:
    """One loader per split; train's shuffle order comes from a generator seeded with the
    run's seed, whose state fit() keeps in its resume point."""
    import torch

    from avbench.data.dataset import ArrayDataset
    from avbench.distributed import launched_processes
    from avbench.train.fast import cuda_precision_support, loader_options

    device_type, _ = cuda_precision_support()
    options = loader_options(cfg.num_workers, device_type=device_type, processes=launched_processes())
    return {
        name: torch.utils.data.DataLoader(
            ArrayDataset(split),
            batch_size=cfg.batch_size,
            shuffle=name == "train",
            generator=torch.Generator().manual_seed(cfg.seed),
            **options,
        )
        for name, split in data.splits.items()
    }


def note_model(record: RunRecord, model) -> None:
    """What the record says about the model it trained."""
    record.params = sum(p.numel() for p in model.parameters())
    # A probe's own head is always new: what matters then is its frozen encoder's weights,
    # which the record already holds from the input extractor.
    own = getattr(model, "weights_source", None)
    record.weights = own or record.weights or "random init (published architecture)"


# The recipe's training stage: (run, accelerator, train settings, on_epoch) -> FitResult.
TrainStage = Callable[[Run, Any, TrainConfig, OnEval], "FitResult"]


def execute(run: Run, train: TrainStage, on_eval: OnEval | None = None) -> RunRecord:
    """Train under one Accelerator and finish the record, whatever happens."""
    from avbench.distributed import RankFailure
    from avbench.errors import OutOfSpace, interrupt_reason

    started = time.perf_counter()
    accelerator = make_accelerator(run.experiment, use_wandb=run.ctx.use_wandb)
    run.record.precision = str(accelerator.mixed_precision)
    out_of_step = False
    try:
        if run.ctx.use_wandb:
            run.record.wandb_run_id = start_wandb(run, accelerator)
        result = train_with_retry(run, accelerator, train, epoch_reporter(run, on_eval))
        finalise_record(run, result)
        if run.ctx.use_wandb and accelerator.is_main_process:
            write_wandb_summary(run, accelerator)
    except (KeyboardInterrupt, OutOfSpace) as exc:  # not the trial's fault: re-queued by a sweep
        run.record.status, run.record.error = "interrupted", interrupt_reason(exc)
        raise
    except Exception as exc:  # a failed trial is a result to record, not a crash of the sweep
        out_of_step = record_failure(run, exc)
    finally:
        close_run(run, accelerator, started)
    if run.record.status == "failed" and out_of_step:
        raise RankFailure(
            f"trial failed on rank {run.ranks.index} of {run.ranks.count}: {run.record.error}; stopping this "
            "launch (the other ranks may be waiting for this one); re-run the command to go on"
        )
    return run.record


def make_accelerator(experiment: Experiment, *, use_wandb: bool):
    """One Accelerator per run: its precision (train.mixed_precision, auto resolved for this
    device), non-blocking copies of pinned batches on a GPU, torch.compile when asked."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DataLoaderConfiguration, DistributedDataParallelKwargs

    from avbench.train.fast import cuda_precision_support, enable_tf32, resolve_precision

    AcceleratorState._reset_state()  # each trial may ask for another precision
    enable_tf32()
    device_type, bf16 = cuda_precision_support()
    train = experiment.train
    skips = MODELS.get(experiment.model).skips_parameters
    return Accelerator(
        mixed_precision=resolve_precision(train.mixed_precision, device_type=device_type, bf16_supported=bf16),
        gradient_accumulation_steps=train.grad_accum,
        log_with="wandb" if use_wandb else None,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)] if skips else None,
        dataloader_config=DataLoaderConfiguration(non_blocking=device_type == "cuda"),
        dynamo_backend="inductor" if train.compile else "no",
    )


def epoch_reporter(run: Run, on_eval: OnEval | None) -> OnEval:
    """fit()'s on_eval: appends the epoch to metrics.jsonl and asks the caller whether to
    stop. Rank 0 decides (it alone reports to the study) and every rank stops with it."""

    def on_epoch(epoch: int, metrics: dict) -> bool:
        if run.ranks.is_main:
            with run.metrics_file.open("a") as handle:
                handle.write(json.dumps(metrics) + "\n")
        run.record.epochs_run = epoch
        return run.ranks.share(bool(on_eval(epoch, metrics)) if on_eval and run.ranks.is_main else False)

    return on_epoch


def train_with_retry(run: Run, accelerator, train: TrainStage, on_epoch: OnEval) -> FitResult:
    """The training stage; out of memory, it runs once more with the same effective batch in
    smaller steps, resuming from the last epoch checkpoint when the first attempt got that far."""
    from avbench.train.failures import empty_device_cache, is_out_of_memory, smaller_micro_batch

    smaller = smaller_micro_batch(run.experiment.train)
    try:
        return train_capped(run, accelerator, train, run.experiment.train, on_epoch)
    except Exception as exc:
        # With many processes the error is one rank's and the others wait for it in a
        # collective: no retry, the launch stops (see RankFailure in execute).
        if not is_out_of_memory(exc) or smaller is None or run.ranks.count > 1:
            raise
    # Retried here, outside the except block, whose traceback pins the failed attempt's memory.
    before = run.experiment.train
    run.record.oom_retry = (
        f"out of memory at batch_size {before.batch_size} x grad_accum {before.grad_accum}; "
        f"retried at {smaller.batch_size} x {smaller.grad_accum}"
    )
    run.save_record()
    accelerator.free_memory()
    empty_device_cache()
    accelerator.gradient_accumulation_steps = smaller.grad_accum
    return train_capped(run, accelerator, train, smaller, on_epoch)


def train_capped(run: Run, accelerator, train: TrainStage, cfg: TrainConfig, on_epoch: OnEval) -> FitResult:
    """A model whose ops are too small to share declares cpu_threads (audeep's RNN: 1)."""
    from avbench.threads import capped_torch_threads

    on_cpu = accelerator.device.type == "cpu"
    with capped_torch_threads(MODELS.get(run.experiment.model).cpu_threads if on_cpu else None):
        return train(run, accelerator, cfg, on_epoch)


def finalise_record(run: Run, result: FitResult) -> None:
    record = run.record
    # The checkpoint's history is authoritative: a crash between saving last.pt and
    # appending to metrics.jsonl would otherwise lose that epoch's line on resume.
    if run.ranks.is_main:
        run.metrics_file.write_text("".join(json.dumps(m) + "\n" for m in result.history))
    record.val, record.test = result.val, result.test
    record.best_epoch, record.stopped = result.best_epoch, result.stopped
    record.resumed_from_epoch = result.resumed_from_epoch
    record.resume_warning = result.resume_warning
    record.epochs_run = len(result.history)
    record.status = "pruned" if result.stopped == "pruned" else "completed"
    if result.test_outputs and run.ranks.is_main:
        write_test_predictions(run, result.test_outputs)


def record_failure(run: Run, exc: Exception) -> bool:
    """The failure in the record; True when the other ranks may not have seen it."""
    from avbench.train.failures import describe_failure, is_out_of_memory
    from avbench.train.loop import NonFiniteLoss

    record = run.record
    record.status, record.error = "failed", describe_failure(exc)
    if record.oom_retry and is_out_of_memory(exc):
        record.error += " (also after halving the micro-batch)"
    # A non-finite loss is checked on the loss summed over all ranks, so every rank fails
    # here together and the sweep goes on; any other error may be this rank's alone.
    return run.ranks.count > 1 and not isinstance(exc, NonFiniteLoss)


def close_run(run: Run, accelerator, started: float) -> None:
    run.record.wall_time_s = round(time.perf_counter() - started, 3)
    run.save_record()
    # Not end_training(): it also destroys the process group that the next trial needs.
    for tracker in accelerator.trackers:
        tracker.finish()
    if run.record.status in ("completed", "pruned") and run.ranks.is_main:
        # A finished run no longer needs its resume point; best.pt stays.
        RunFiles(run.out_dir).last.unlink(missing_ok=True)
    if run.ranks.count > 1:
        write_rank_report(run.out_dir, run.ranks.index, run.config(), run.record)
