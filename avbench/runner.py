"""Run one concrete experiment config once: data → model → fit() → run record.

Used by `avbench run` and by every sweep backend, so all of them write the same records.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml

from avbench.config import Experiment, TrainConfig
from avbench.preflight import (
    check_feasible,
    check_model_args,
    model_input_extractor,
    resolve_data_root,
    with_model_inputs,
)
from avbench.registry import MODELS, TASKS
from avbench.results.provenance import git_hash, versions
from avbench.results.records import RunRecord, run_dir, write_record
from avbench.threads import capped_torch_threads
from avbench.train.failures import describe_failure, empty_device_cache, is_out_of_memory, smaller_micro_batch


def new_run_id(trial: int | None = None) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    prefix = f"t{trial:04d}-" if trial is not None else ""
    return f"{prefix}{stamp}-{secrets.token_hex(2)}"


def run_experiment(
    experiment: Experiment,
    *,
    results: Path,
    synthetic: bool = False,
    use_wandb: bool = True,
    preset: str | None = None,
    sweep: str | None = None,
    trial: int | None = None,
    searched: dict | None = None,
    on_eval: Callable[[int, dict], bool | None] | None = None,
    run_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    cv: dict | None = None,
) -> RunRecord:
    """Train and evaluate once. User errors (config, data) raise; a failure during training
    is caught and returned as a record with status 'failed' and its reason."""
    import torch
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    from avbench.data.cache import FeatureCache
    from avbench.data.dataset import ArrayDataset, cache_workers, prepare_data
    from avbench.distributed import RankFailure, join_ranks
    from avbench.train.loop import FitResult, NonFiniteLoss, fit

    # Under torchrun / accelerate launch every rank runs this with the same config; rank 0
    # alone writes results, decides about stopping, and gives the run its id.
    ranks = join_ranks()
    model_args = check_model_args(experiment)
    experiment = with_model_inputs(experiment)
    check_feasible(experiment, model_args)
    task = TASKS.get(experiment.task)()
    root, data_kind = resolve_data_root(experiment, synthetic=synthetic)
    cache = FeatureCache(Path(results) / "cache" / "features", workers=cache_workers(experiment.data))
    audio = model_input_extractor(experiment, model_args, cache.root)
    data = prepare_data(task, root, experiment.data, cache, progress, audio=audio)
    data_scores = MODELS.get(experiment.model).data_scores
    clips = None
    if MODELS.get(experiment.model).objective == "reconstruction":
        # The auDeep pipeline: the autoencoder trains on the clips of every fold (no labels),
        # then an MLP cross-validates its representations (avbench.audeep.pipeline).
        from avbench.audeep.pipeline import Clips, autoencoder_data

        clips = Clips.from_prepared(data, root)
        data = autoencoder_data(clips, data, seed=experiment.data.split_seed)

    record = RunRecord(
        run_id=ranks.share(run_id or new_run_id(trial)),
        experiment=experiment.name,
        task=experiment.task,
        model=experiment.model,
        data_kind=data_kind,
        preset=preset,
        sweep=sweep,
        trial=trial,
        searched=dict(searched or {}),
        metric=experiment.train.metric,
        seed=experiment.train.seed,
        data_sizes=data.sizes(),
        skipped_files=[list(s) for s in data.skipped],
        cache=data.cache,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        versions=versions(),
        git=git_hash(),
        cv=cv,
        processes=ranks.count,
        data_scores=data_scores(data, model_args) if data_scores else {},
    )
    out_dir = run_dir(results, experiment.name, record.run_id)
    out_dir.mkdir(parents=True, exist_ok=True)

    def save_record() -> None:
        if ranks.is_main:
            write_record(results, record)

    if ranks.is_main:
        (out_dir / "config.yaml").write_text(
            yaml.safe_dump(experiment.model_dump(exclude={"presets"}), sort_keys=False)
        )
    save_record()
    started = time.perf_counter()

    AcceleratorState._reset_state()  # each trial may ask for another precision
    accelerator = Accelerator(
        mixed_precision=experiment.train.mixed_precision,
        gradient_accumulation_steps=experiment.train.grad_accum,
        log_with="wandb" if use_wandb else None,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)]
        if MODELS.get(experiment.model).skips_parameters
        else None,
    )
    out_of_step = False
    try:
        if use_wandb:
            from avbench.tracking import start_tracking

            record.wandb_run_id = start_tracking(
                accelerator,
                results=results,
                project=experiment.tracking.project,
                entity=experiment.tracking.entity,
                run_name=f"{experiment.name}/{record.run_id}",
                group=sweep or experiment.name,
                config={
                    **experiment.model_dump(exclude={"presets"}),
                    "searched": record.searched,
                    "run_id": record.run_id,
                    "data_kind": data_kind,
                },
                tags=[experiment.task, experiment.model, data_kind.split(",")[0]],
            )
        metrics_file = out_dir / "metrics.jsonl"

        def on_epoch(epoch: int, metrics: dict) -> bool:
            if ranks.is_main:
                with metrics_file.open("a") as handle:
                    handle.write(json.dumps(metrics) + "\n")
            record.epochs_run = epoch
            # Rank 0 decides (it alone reports to the study) and every rank stops with it.
            return ranks.share(bool(on_eval(epoch, metrics)) if on_eval and ranks.is_main else False)

        def train(cfg: TrainConfig) -> FitResult:
            # A model whose ops are too small to share declares cpu_threads (audeep's RNN: 1).
            on_cpu = accelerator.device.type == "cpu"
            with capped_torch_threads(MODELS.get(experiment.model).cpu_threads if on_cpu else None):
                return _train(cfg)

        def _train(cfg: TrainConfig) -> FitResult:
            set_seed(cfg.seed)
            model = MODELS.get(experiment.model)(data.spec, **model_args)
            record.params = sum(p.numel() for p in model.parameters())
            # A probe's own head is always new: what matters is its frozen encoder's weights.
            weights = getattr(model, "weights_source", None) or getattr(audio, "weights_source", None)
            record.weights = weights or "random init (published architecture)"
            loaders = {
                name: torch.utils.data.DataLoader(
                    ArrayDataset(split),
                    batch_size=cfg.batch_size,
                    shuffle=name == "train",
                    num_workers=cfg.num_workers,
                    generator=torch.Generator().manual_seed(cfg.seed),
                )
                for name, split in data.splits.items()
            }
            result = fit(
                model,
                loaders,
                cfg,
                accelerator,
                num_classes=data.spec.num_classes,
                checkpoint_dir=out_dir,
                on_eval=on_epoch,
                reconstruction_loss=model.loss if clips else None,
            )
            if clips is not None and result.stopped != "pruned":
                from avbench.audeep.pipeline import score_representations

                scored = score_representations(
                    model, clips, experiment, out_dir, run_id=record.run_id, write_files=accelerator.is_main_process
                )
                record.cv = scored.cv_record(record.run_id)
                result.val = {**scored.val, "reconstruction_loss": result.val.get("loss")}
                result.test = {**scored.test, "reconstruction_loss": result.test.get("loss")}
            return result

        smaller = smaller_micro_batch(experiment.train)
        try:
            result = train(experiment.train)
        except Exception as exc:
            # With many processes the error is one rank's and the others wait for it in a
            # collective: no retry, the launch stops (see RankFailure below).
            if not is_out_of_memory(exc) or smaller is None or ranks.count > 1:
                raise
            result = None  # retried below, outside this block, whose traceback pins the failed attempt's memory
        if result is None:
            # Same effective batch in smaller steps; the retry resumes from the last epoch
            # checkpoint when the first attempt got that far.
            before = experiment.train
            record.oom_retry = (
                f"out of memory at batch_size {before.batch_size} x grad_accum {before.grad_accum}; "
                f"retried at {smaller.batch_size} x {smaller.grad_accum}"
            )
            save_record()
            accelerator.free_memory()
            empty_device_cache()
            accelerator.gradient_accumulation_steps = smaller.grad_accum
            result = train(smaller)
        # The checkpoint's history is authoritative: a crash between saving last.pt and
        # appending to metrics.jsonl would otherwise lose that epoch's line on resume.
        if ranks.is_main:
            metrics_file.write_text("".join(json.dumps(m) + "\n" for m in result.history))
        record.val, record.test = result.val, result.test
        record.best_epoch, record.stopped = result.best_epoch, result.stopped
        record.resumed_from_epoch = result.resumed_from_epoch
        record.epochs_run = len(result.history)
        record.status = "pruned" if result.stopped == "pruned" else "completed"
        if use_wandb and accelerator.is_main_process:
            summary = {f"best_val/{k}": v for k, v in record.val.items() if isinstance(v, int | float)}
            summary.update({f"test/{k}": v for k, v in record.test.items() if isinstance(v, int | float)})
            accelerator.get_tracker("wandb", unwrap=True).summary.update(summary)
    except KeyboardInterrupt:
        record.status, record.error = "interrupted", "interrupted by the user"
        raise
    except Exception as exc:  # a failed trial is a result to record, not a crash of the sweep
        record.status, record.error = "failed", describe_failure(exc)
        if record.oom_retry and is_out_of_memory(exc):
            record.error += " (also after halving the micro-batch)"
        # A non-finite loss is checked on the loss summed over all ranks, so every rank fails
        # here together and the sweep goes on; any other error may be this rank's alone.
        out_of_step = ranks.count > 1 and not isinstance(exc, NonFiniteLoss)
    finally:
        record.wall_time_s = round(time.perf_counter() - started, 3)
        save_record()
        # Not end_training(): it also destroys the process group that the next trial needs.
        for tracker in accelerator.trackers:
            tracker.finish()
        if record.status in ("completed", "pruned") and ranks.is_main:
            # A finished run no longer needs its resume point; best.pt stays.
            (out_dir / "last.pt").unlink(missing_ok=True)
        if ranks.count > 1:
            write_rank_report(out_dir, ranks.index, experiment, record)
    if record.status == "failed" and out_of_step:
        raise RankFailure(
            f"trial failed on rank {ranks.index} of {ranks.count}: {record.error}; stopping this launch "
            "(the other ranks may be waiting for this one); re-run the command to go on"
        )
    return record


def write_rank_report(out_dir: Path, rank: int, experiment: Experiment, record: RunRecord) -> None:
    """rank-<i>.json: what this rank trained (its config's hash, its searched values) and how
    it ended, so anyone can check that every rank of a run trained the same trial."""
    from avbench.results.records import write_json_atomic

    config = json.dumps(experiment.model_dump(exclude={"presets"}), sort_keys=True, default=str)
    write_json_atomic(
        out_dir / f"rank-{rank}.json",
        {
            "rank": rank,
            "processes": record.processes,
            "searched": record.searched,
            "config_sha256": hashlib.sha256(config.encode()).hexdigest(),
            "status": record.status,
            "epochs_run": record.epochs_run,
            "best_epoch": record.best_epoch,
            "val": record.val,
            "test": record.test,
        },
    )
