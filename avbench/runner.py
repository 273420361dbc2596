"""Run one concrete experiment config once: data → model → fit() → run record.

Used by `avbench run` and by every sweep backend, so all of them write the same records.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import platform
import secrets
import subprocess
import time
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml

from avbench.config import EvaluationConfig, Experiment, TrainConfig
from avbench.errors import ConfigError, DatasetError
from avbench.registry import MODELS, TASKS, did_you_mean
from avbench.results import RunRecord, run_dir, write_record
from avbench.spec import TaskSpec
from avbench.threads import capped_torch_threads
from avbench.train.failures import describe_failure, empty_device_cache, is_out_of_memory, smaller_micro_batch

SYNTHETIC_MARKER = ".avbench-synthetic"


def synthetic_root(task: str, size: str = "small") -> Path:
    """$AVBENCH_DATA/<task> for the default size, <task>-<size> for others, so switching
    presets never rewrites a stand-in (and never invalidates its cached features)."""
    base = Path(os.environ.get("AVBENCH_DATA", "data/synthetic"))
    return base / (task if size == "small" else f"{task}-{size}")


def ensure_synthetic(task_name: str, size: str) -> Path:
    """Write the stand-in once; a lock keeps concurrent workers from writing it twice."""
    import fcntl

    root = synthetic_root(task_name, size)
    marker = root / SYNTHETIC_MARKER
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists() or json.loads(marker.read_text()).get("size") != size:
            TASKS.get(task_name)().synthesize(root, size=size, seed=0)
    return root


def resolve_data_root(experiment: Experiment, *, synthetic: bool) -> tuple[Path, str]:
    """Where the data is and whether it is real; writes the stand-in on first use."""
    if synthetic:
        root, kind = ensure_synthetic(experiment.task, experiment.data.synth_size), "synthetic"
    else:
        if experiment.data.root is None:
            layout = TASKS.get(experiment.task).layout
            raise DatasetError(
                f"{experiment.name}: no data.root for task '{experiment.task}' (expected {layout}); "
                "set data.root, pass --set data.root=PATH, or use --synthetic"
            )
        root = Path(experiment.data.root).expanduser()
        kind = "synthetic" if (root / SYNTHETIC_MARKER).exists() else "real"
    if experiment.data.shuffle_train_labels:
        kind += ", shuffled train labels"
    return root, kind


def check_model_args(experiment: Experiment) -> dict:
    """model_args against the factory's signature: unknown keys and wrong types fail early."""
    from pydantic import ConfigDict, ValidationError, create_model

    factory = MODELS.get(experiment.model)
    hints = typing.get_type_hints(factory)
    fields = {
        name: (hints.get(name, typing.Any), param.default)
        for name, param in list(inspect.signature(factory).parameters.items())[1:]
    }
    for key in experiment.model_args:
        if key not in fields:
            raise ConfigError(f"unknown config key 'model_args.{key}' for model '{experiment.model}'"
                              f"{did_you_mean(key, fields)}")
    schema = create_model(f"{experiment.model}-args", __config__=ConfigDict(extra="forbid"), **fields)
    try:
        checked = schema.model_validate(experiment.model_args).model_dump()
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"'model_args.{where}': {err['msg']} (got {err.get('input')!r})") from None
    _check_objective_sections(experiment, factory.objective)
    return checked


def _check_objective_sections(experiment: Experiment, objective: str) -> None:
    """Settings only one kind of model reads are refused for the other, never silently ignored."""
    if objective == "reconstruction":
        if experiment.data.fold != 1:
            raise ConfigError(f"model '{experiment.model}' cross-validates over every fold in each run; "
                              "data.fold does not apply")
    elif experiment.evaluation != EvaluationConfig():
        raise ConfigError(f"the evaluation section scores learned representations; model '{experiment.model}' "
                          "is a classifier: remove it")


def with_model_inputs(experiment: Experiment) -> Experiment:
    """The experiment with `data.audio_feature: auto` replaced by the feature its model reads,
    after checking that the data gives the model every modality it needs."""
    factory = MODELS.get(experiment.model)
    data = experiment.data
    missing = [m for m in factory.modalities if m not in data.modalities]
    if missing:
        raise ConfigError(f"model '{experiment.model}' reads {' + '.join(factory.modalities)}; add {missing[0]} to "
                          f"data.modalities (now {data.modalities})")
    wanted = factory.audio_input
    if data.audio_feature == "auto":
        return experiment.model_copy(update={"data": data.model_copy(update={"audio_feature": wanted})})
    if "audio" in factory.modalities and data.audio_feature != wanted:
        raise ConfigError(f"model '{experiment.model}' reads audio as {wanted}, but data.audio_feature is "
                          f"{data.audio_feature}; remove it or set it to {wanted}")
    return experiment


def spec_without_data(experiment: Experiment) -> TaskSpec:
    """The TaskSpec a model will get, from the config alone (shapes follow from the data
    settings): for checks and parameter counts before any data is read. The class count is
    the task's declared one; folder tasks (which learn theirs from the data) count 10."""
    from avbench.data.dataset import example_shapes

    task = TASKS.get(experiment.task)()
    classes = getattr(task, "classes", ()) or tuple(range(10))
    return TaskSpec(num_classes=len(classes), modalities=tuple(experiment.data.modalities),
                    sample_rate=experiment.data.sample_rate, shapes=example_shapes(experiment.data),
                    class_names=tuple(map(str, classes)))


def check_feasible(experiment: Experiment, model_args: dict | None = None) -> None:
    """Raise InfeasibleConfig (or ConfigError) when the model cannot be built with these
    values, through its registered `check`, before any data is read: `avbench run` stops with
    one line, a sweep skips the combination untrained."""
    factory = MODELS.get(experiment.model)
    if factory.check is None:
        return
    if model_args is None:
        model_args = check_model_args(experiment)
    factory.check(spec_without_data(with_model_inputs(experiment)), **model_args)


def new_run_id(trial: int | None = None) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    prefix = f"t{trial:04d}-" if trial is not None else ""
    return f"{prefix}{stamp}-{secrets.token_hex(2)}"


def versions() -> dict[str, str]:
    import accelerate
    import timm
    import torch

    import avbench

    return {"python": platform.python_version(), "avbench": avbench.__version__,
            "torch": torch.__version__, "timm": timm.__version__, "accelerate": accelerate.__version__}


def git_hash() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


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
    from avbench.train.optim import model_param_groups

    # Under torchrun / accelerate launch every rank runs this with the same config; rank 0
    # alone writes results, decides about stopping, and gives the run its id.
    ranks = join_ranks()
    model_args = check_model_args(experiment)
    experiment = with_model_inputs(experiment)
    check_feasible(experiment, model_args)
    task = TASKS.get(experiment.task)()
    root, data_kind = resolve_data_root(experiment, synthetic=synthetic)
    cache = FeatureCache(Path(results) / "cache" / "features", workers=cache_workers(experiment.data))
    data = prepare_data(task, root, experiment.data, cache, progress)
    clips = None
    if MODELS.get(experiment.model).objective == "reconstruction":
        # The auDeep pipeline: the autoencoder trains on the clips of every fold (no labels),
        # then an MLP cross-validates its representations (avbench.features.pipeline).
        from avbench.features.pipeline import Clips, autoencoder_data

        clips = Clips.from_prepared(data, root)
        data = autoencoder_data(clips, data, seed=experiment.data.split_seed)

    record = RunRecord(
        run_id=ranks.share(run_id or new_run_id(trial)), experiment=experiment.name, task=experiment.task,
        model=experiment.model, data_kind=data_kind, preset=preset, sweep=sweep, trial=trial,
        searched=dict(searched or {}), metric=experiment.train.metric, seed=experiment.train.seed,
        data_sizes=data.sizes(), skipped_files=[list(s) for s in data.skipped],
        cache=data.cache,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        versions=versions(), git=git_hash(), cv=cv, processes=ranks.count,
    )
    out_dir = run_dir(results, experiment.name, record.run_id)
    out_dir.mkdir(parents=True, exist_ok=True)

    def save_record() -> None:
        if ranks.is_main:
            write_record(results, record)

    if ranks.is_main:
        (out_dir / "config.yaml").write_text(yaml.safe_dump(experiment.model_dump(exclude={"presets"}),
                                                            sort_keys=False))
    save_record()
    started = time.perf_counter()

    AcceleratorState._reset_state()  # each trial may ask for another precision
    accelerator = Accelerator(
        mixed_precision=experiment.train.mixed_precision,
        gradient_accumulation_steps=experiment.train.grad_accum,
        log_with="wandb" if use_wandb else None,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)]
        if MODELS.get(experiment.model).skips_parameters else None,
    )
    out_of_step = False
    try:
        if use_wandb:
            from avbench.tracking import start_tracking

            record.wandb_run_id = start_tracking(
                accelerator, results=results, project=experiment.tracking.project, entity=experiment.tracking.entity,
                run_name=f"{experiment.name}/{record.run_id}", group=sweep or experiment.name,
                config={**experiment.model_dump(exclude={"presets"}), "searched": record.searched,
                        "run_id": record.run_id, "data_kind": data_kind},
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
            record.weights = getattr(model, "weights_source", "random init (published architecture)")
            loaders = {
                name: torch.utils.data.DataLoader(
                    ArrayDataset(split), batch_size=cfg.batch_size, shuffle=name == "train",
                    num_workers=cfg.num_workers, generator=torch.Generator().manual_seed(cfg.seed),
                )
                for name, split in data.splits.items()
            }
            groups = list(model_param_groups(model, cfg.lr))
            result = fit(model, loaders, cfg, accelerator, num_classes=data.spec.num_classes, checkpoint_dir=out_dir,
                         on_eval=on_epoch, param_groups=groups, reconstruction_loss=model.loss if clips else None)
            if clips is not None and result.stopped != "pruned":
                from avbench.features.pipeline import score_representations

                scored = score_representations(model, clips, experiment, out_dir, run_id=record.run_id,
                                               write_files=accelerator.is_main_process)
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
            record.oom_retry = (f"out of memory at batch_size {before.batch_size} x grad_accum {before.grad_accum}; "
                                f"retried at {smaller.batch_size} x {smaller.grad_accum}")
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
        raise RankFailure(f"trial failed on rank {ranks.index} of {ranks.count}: {record.error}; stopping this launch "
                          "(the other ranks may be waiting for this one); re-run the command to go on")
    return record


def write_rank_report(out_dir: Path, rank: int, experiment: Experiment, record: RunRecord) -> None:
    """rank-<i>.json: what this rank trained (its config's hash, its searched values) and how
    it ended, so anyone can check that every rank of a run trained the same trial."""
    from avbench.results import write_json_atomic

    config = json.dumps(experiment.model_dump(exclude={"presets"}), sort_keys=True, default=str)
    write_json_atomic(out_dir / f"rank-{rank}.json", {
        "rank": rank, "processes": record.processes, "searched": record.searched,
        "config_sha256": hashlib.sha256(config.encode()).hexdigest(), "status": record.status,
        "epochs_run": record.epochs_run, "best_epoch": record.best_epoch, "val": record.val, "test": record.test,
    })
