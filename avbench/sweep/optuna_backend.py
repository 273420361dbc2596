"""The default backend: Optuna, one worker loop per process against a shared storage.

`trials` counts finished (complete or pruned) trials in total, across restarts and workers.
Each worker takes a trial only under the storage's claim lock and only while
finished + running < trials, so workers asking at the same moment never overshoot; a trial
that fails (or whose worker dies) frees its place for the next claim. A trial whose worker
died (kill -9, a lost machine, Ctrl-C) is failed and re-enqueued with the same parameters;
its retry inherits the run_id and so resumes from the dead trial's last epoch checkpoint.
A suggestion the model cannot be built with is rejected untrained (avbench.sweep.infeasible).
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from avbench.config import RESULT_NEUTRAL_FIELDS, LoadedExperiment
from avbench.errors import ConfigError, InfeasibleConfig
from avbench.preflight import check_feasible
from avbench.results.layout import run_dir
from avbench.results.records import RunRecord
from avbench.runner import new_run_id
from avbench.sweep.infeasible import INFEASIBLE, infeasible_record, is_infeasible, reject_trial
from avbench.sweep.liveness import Heartbeat, recover_dead_trials, worker_id
from avbench.sweep.samplers import (
    check_sampler,
    is_grid_exhausted,
    make_pruner,
    make_sampler,
    sampler_name,
    trial_seed,
)
from avbench.sweep.space import Param, SearchSpace
from avbench.sweep.storage import (
    RETRY,
    claim_lock,
    display_url,
    open_storage,
    resolve_storage_url,
    supports_heartbeat,
)
from avbench.sweep.trial_loop import Streaks, SweepHooks

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
IDLE_POLL_S = 0.5  # how often a worker with no trial to take looks again (the sweep's last trials)


@dataclass
class SweepOutcome:
    study: str
    storage: str
    target: int
    finished: int
    failed: int
    best_value: float | None
    best_params: dict
    best_run_id: str | None
    grid_exhausted: bool = False
    infeasible: int = 0  # suggestions rejected untrained: not trials


@dataclass
class StudyHandle:
    """An opened study plus what every worker needs to take part in it."""

    study: optuna.Study
    name: str
    url: str
    sampler: str
    seed: int
    target: int
    notes: list[str]
    lock: AbstractContextManager  # taken to count trials and ask for one (see claim_trial)


def study_name(loaded: LoadedExperiment, preset: str | None, synthetic: bool) -> str:
    parts = [loaded.name] + ([preset] if preset else []) + (["synthetic"] if synthetic else [])
    return "-".join(parts)


def suggest(trial: optuna.Trial, param: Param):
    if param.kind == "categorical":
        return trial.suggest_categorical(param.name, list(param.choices))
    if param.kind == "int":
        return trial.suggest_int(param.name, int(param.low), int(param.high), log=param.log)
    return trial.suggest_float(param.name, param.low, param.high, log=param.log, step=param.step)


def config_fingerprint(loaded: LoadedExperiment, space: SearchSpace) -> str:
    payload = {k: v for k, v in loaded.raw.items() if k not in ("presets", "sweep")}
    if isinstance(payload.get("data"), dict):  # how data is checked and cached does not change results
        payload["data"] = {k: v for k, v in payload["data"].items() if f"data.{k}" not in RESULT_NEUTRAL_FIELDS}
    payload["space"] = {n: p.describe() for n, p in space.params.items()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def open_study(
    loaded: LoadedExperiment,
    space: SearchSpace,
    *,
    trials: int,
    results: Path,
    preset: str | None = None,
    synthetic: bool = False,
    storage_url: str | None = None,
    study: str | None = None,
    sampler: str | None = None,
    pruner: str | None = None,
) -> StudyHandle:
    """Create the study or join it; refuse a study made from another config or space."""
    # Our display reports every trial in one line; optuna would add tracebacks for each failure.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    name = study or study_name(loaded, preset, synthetic)
    url = resolve_storage_url(storage_url, results, loaded.name)
    chosen = sampler_name(space, sampler)
    notes = check_sampler(space, chosen)
    seed = loaded.config.sweep.seed
    optuna_study = optuna.create_study(
        study_name=name,
        storage=open_storage(url),
        load_if_exists=True,
        direction="maximize",
        sampler=make_sampler(space, chosen, seed),
        pruner=make_pruner(pruner, loaded.config.sweep.pruner, space, loaded.config.train.epochs),
    )
    fingerprint = config_fingerprint(loaded, space)
    known = optuna_study.user_attrs.get("config_fingerprint")
    if known is None:
        optuna_study.set_user_attr("config_fingerprint", fingerprint)
        optuna_study.set_user_attr("experiment", loaded.name)
        optuna_study.set_user_attr("metric", space.metric)
    elif known != fingerprint:
        raise ConfigError(
            f"study '{name}' in {display_url(url)} was made from a different config or search space; "
            "pass --study NEW_NAME to start another study"
        )
    if chosen == "grid":
        trials = min(trials, space.grid_size())  # a grid has no more distinct trials to give
    return StudyHandle(optuna_study, name, url, chosen, seed, trials, notes, claim_lock(url, name))


def count_finished(trials: list[optuna.trial.FrozenTrial]) -> int:
    """Trials that count toward `--trials`: complete or pruned, not rejected as infeasible."""
    return sum(t.state in FINISHED_STATES and not is_infeasible(t) for t in trials)


def state_counts(study: optuna.Study) -> Counter:
    """Trials by state; infeasible ones (told PRUNED) under INFEASIBLE instead."""
    return Counter(INFEASIBLE if is_infeasible(t) else t.state for t in study.get_trials(deepcopy=False))


class _Done:
    """claim_trial's answer when the study needs no more trials."""


def claim_trial(handle: StudyHandle, space: SearchSpace) -> optuna.Trial | type[_Done] | None:
    """Under the claim lock: a new trial if the budget allows one, None to wait and look
    again (the running trials may still fail), _Done when the study is finished."""
    study = handle.study
    with handle.lock:
        recover_dead_trials(study)
        counts = state_counts(study)
        finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
        if finished >= handle.target:
            return _Done
        # A grid's seed fixes the order of its points (their grid ids), so it must stay the same.
        seed = handle.seed if handle.sampler == "grid" else trial_seed(handle.seed, sum(counts.values()))
        study.sampler = make_sampler(space, handle.sampler, seed)
        if is_grid_exhausted(study.sampler, study) and not counts[TrialState.WAITING]:
            return _Done
        if finished + counts[TrialState.RUNNING] >= handle.target:
            return None
        with warnings.catch_warnings():
            # Optuna warns that heartbeats are meant for Study.optimize; this loop beats itself.
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = study.ask()  # a re-enqueued (WAITING) trial comes first
        # Before the lock is released, so no other worker can take this trial for a dead one.
        trial.set_user_attr("worker", worker_id())
        if supports_heartbeat(study._storage):
            study._storage.record_heartbeat(trial._trial_id)
        return trial


def run_sweep(
    loaded: LoadedExperiment,
    space: SearchSpace,
    *,
    trials: int,
    results: Path,
    synthetic: bool,
    use_wandb: bool,
    preset: str | None = None,
    storage_url: str | None = None,
    study: str | None = None,
    sampler: str | None = None,
    pruner: str | None = None,
    threads: int | None = None,
    hooks: SweepHooks = SweepHooks(),
) -> SweepOutcome:
    """Open (or join) the study and work on it in this process until it has `trials`
    finished trials."""
    handle = open_study(
        loaded,
        space,
        trials=trials,
        results=results,
        preset=preset,
        synthetic=synthetic,
        storage_url=storage_url,
        study=study,
        sampler=sampler,
        pruner=pruner,
    )
    return run_worker(
        handle,
        loaded,
        space,
        results=results,
        synthetic=synthetic,
        use_wandb=use_wandb,
        preset=preset,
        threads=threads,
        hooks=hooks,
    )


def run_worker(
    handle: StudyHandle,
    loaded: LoadedExperiment,
    space: SearchSpace,
    *,
    results: Path,
    synthetic: bool,
    use_wandb: bool,
    preset: str | None = None,
    threads: int | None = None,
    hooks: SweepHooks = SweepHooks(),
) -> SweepOutcome:
    """One worker: take trials until the study needs no more."""
    if threads:
        import torch

        torch.set_num_threads(threads)  # this process's share of the cores (see --threads)
    streaks = Streaks()
    while True:
        trial = claim_trial(handle, space)
        if trial is _Done:
            break
        if trial is None:
            time.sleep(IDLE_POLL_S)
            continue
        with Heartbeat(handle.study._storage, trial._trial_id):
            record = _run_trial(
                handle,
                space,
                trial,
                loaded=loaded,
                results=results,
                synthetic=synthetic,
                use_wandb=use_wandb,
                preset=preset,
                hooks=hooks,
            )
        hooks.trial_end(record)
        streaks.after(record.status, record.error)
    return sweep_outcome(handle)


def _run_trial(
    handle: StudyHandle,
    space: SearchSpace,
    trial: optuna.Trial,
    *,
    loaded,
    results,
    synthetic,
    use_wandb,
    preset,
    hooks: SweepHooks,
) -> RunRecord:
    """Train one trial and tell the study how it ended."""
    from avbench.runner import run_experiment

    study = handle.study
    try:
        values = {p.name: suggest(trial, p) for p in space.params.values()}
        experiment = loaded.resolve(values)
        try:
            check_feasible(experiment)
        except InfeasibleConfig as exc:
            reject_trial(study, trial, str(exc))
            return infeasible_record(loaded, trial.number, values, str(exc))
        hooks.trial_start(trial.number, values)
        # A retry inherits the dead trial's run_id and so resumes from its checkpoint; a new
        # trial never reuses a directory (e.g. left by a deleted study of the same name).
        run_id = trial.user_attrs.get("run_id")
        if run_id is None:
            run_id = f"t{trial.number:04d}-{handle.name}"
            if run_dir(results, loaded.name, run_id).exists():
                run_id = new_run_id(trial.number)
        trial.set_user_attr("run_id", run_id)

        def on_eval(epoch: int, metrics: dict) -> bool:
            hooks.epoch(epoch, metrics)
            if space.metric not in metrics:  # an autoencoder's epoch: its score comes after training
                return False
            trial.report(metrics[space.metric], epoch)
            return trial.should_prune()

        record = run_experiment(
            experiment,
            results=results,
            synthetic=synthetic,
            use_wandb=use_wandb,
            preset=preset,
            sweep=handle.name,
            trial=trial.number,
            searched=values,
            on_eval=on_eval,
            run_id=run_id,
            progress=hooks.features,
        )
    except KeyboardInterrupt:
        # Fail it and enqueue its parameters again, so the next run resumes it from its last
        # epoch checkpoint instead of losing it.
        study.tell(trial, state=TrialState.FAIL)
        RETRY(study, study._storage.get_trial(trial._trial_id))
        raise
    except Exception as exc:  # a user error (config, data): every trial would hit it
        trial.set_user_attr("error", str(exc) or type(exc).__name__)
        study.tell(trial, state=TrialState.FAIL)
        raise
    try:
        if record.oom_retry:
            trial.set_user_attr("oom_retry", record.oom_retry)
        if record.status == "failed":
            trial.set_user_attr("error", record.error or "failed")
            study.tell(trial, state=TrialState.FAIL)
        elif record.status == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, float(record.val[space.metric.split("/", 1)[1]]))
    except UpdateFinishedTrialError:
        # Another worker took this trial for dead (no heartbeat within the grace period) and
        # re-enqueued it; its retry owns the result now.
        record.status, record.error = "failed", "declared dead by another worker (heartbeat missed)"
    return record


def sweep_outcome(handle: StudyHandle) -> SweepOutcome:
    trials = handle.study.get_trials(deepcopy=False)
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(completed, key=lambda t: t.value) if completed else None
    return SweepOutcome(
        study=handle.name,
        storage=display_url(handle.url),
        target=handle.target,
        finished=count_finished(trials),
        infeasible=sum(map(is_infeasible, trials)),
        failed=sum(t.state == TrialState.FAIL for t in trials),
        best_value=best.value if best else None,
        best_params=dict(best.params) if best else {},
        best_run_id=best.user_attrs.get("run_id") if best else None,
        grid_exhausted=is_grid_exhausted(handle.study.sampler, handle.study),
    )
