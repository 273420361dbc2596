"""The default backend: Optuna with a local SQLite storage under results/.

Re-running the same command resumes the study. `trials` counts finished (complete or
pruned) trials in total, across restarts. A trial whose worker died (kill -9, Ctrl-C) is
failed and re-enqueued with the same parameters; its retry resumes from the dead trial's
last epoch checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from avbench.config import RESULT_NEUTRAL_FIELDS, LoadedExperiment
from avbench.errors import AvbenchError, ConfigError
from avbench.results import RunRecord, run_dir
from avbench.runner import new_run_id, run_experiment
from avbench.sweep.space import Param, SearchSpace

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
MAX_CONSECUTIVE_FAILURES = 3
WORKER = f"{socket.gethostname()}:{os.getpid()}"
# A retried trial is a new trial with the dead one's parameters and user attributes
# (so its run_id, and with it the run directory holding the epoch checkpoint).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ExperimentalWarning)
    RETRY = RetryHeartbeatStaleTrialCallback(max_retry=3)


class TrialFailed(Exception):
    """A trial failed (NaN, OOM, exception); Optuna records it and the sweep goes on."""


@dataclass
class SweepOutcome:
    study: str
    storage: str
    finished: int
    failed: int
    best_value: float | None
    best_params: dict
    best_run_id: str | None


def study_name(loaded: LoadedExperiment, preset: str | None, synthetic: bool) -> str:
    parts = [loaded.name] + ([preset] if preset else []) + (["synthetic"] if synthetic else [])
    return "-".join(parts)


def default_storage(results: Path, experiment: str) -> str:
    path = Path(results) / "studies" / f"{experiment}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path.resolve()}"


def open_storage(url: str) -> RDBStorage:
    """Heartbeats let any worker detect a trial whose process died and retry it."""
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats are "experimental" since 2.8
        return RDBStorage(
            url, engine_kwargs=engine_kwargs, heartbeat_interval=10, grace_period=30,
            heartbeat_stale_trial_callback=RETRY,
        )


def make_sampler(space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    if space.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if space.method == "grid":
        grid = {}
        for p in space.params.values():
            if p.grid_size() is None:
                raise ConfigError(f"method grid needs finite choices, '{p.name}' is {p.describe()}")
            grid[p.name] = list(p.choices) if p.kind == "categorical" else list(range(int(p.low), int(p.high) + 1))
        return optuna.samplers.GridSampler(grid, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(name: str | None, default: str, space: SearchSpace) -> optuna.pruners.BasePruner:
    """--pruner beats the sweep file's early_terminate, which beats the experiment's sweep.pruner."""
    if name is None:
        name = "hyperband" if space.early_terminate.get("type") == "hyperband" else default
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=int(space.early_terminate.get("min_iter", 1)))
    # The first epochs of a net trained from scratch say little about where it ends up.
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_local_trials(study: optuna.Study, storage: RDBStorage) -> int:
    """Trials left RUNNING by a dead process on this host are failed (and so re-enqueued) at
    once, without waiting for the heartbeat grace period."""
    host = socket.gethostname()
    count = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if worker_host == host and pid.isdigit() and not _pid_alive(int(pid)):
            if storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                RETRY(study, storage.get_trial(trial._trial_id))
                count += 1
    return count


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
    pruner: str | None = None,
    on_trial_start: Callable[[int, dict], None] | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
    on_trial_end: Callable[[RunRecord], None] | None = None,
    on_features: Callable[[int, int], None] | None = None,
) -> SweepOutcome:
    # Our display reports every trial in one line; optuna would add tracebacks for each failure.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    name = study or study_name(loaded, preset, synthetic)
    url = storage_url or default_storage(results, loaded.name)
    storage = open_storage(url)
    sweep_cfg = loaded.config.sweep
    optuna_study = optuna.create_study(
        study_name=name, storage=storage, load_if_exists=True, direction="maximize",
        sampler=make_sampler(space, sweep_cfg.seed), pruner=make_pruner(pruner, sweep_cfg.pruner, space),
    )
    fingerprint = config_fingerprint(loaded, space)
    known = optuna_study.user_attrs.get("config_fingerprint")
    if known is None:
        optuna_study.set_user_attr("config_fingerprint", fingerprint)
    elif known != fingerprint:
        raise ConfigError(f"study '{name}' in {url} was made from a different config or search space; "
                          "pass --study NEW_NAME to start another study")
    fail_dead_local_trials(optuna_study, storage)
    metric = space.metric.split("/", 1)[1]
    failures: list[str] = []
    current: dict[str, optuna.Trial] = {}

    def objective(trial: optuna.Trial) -> float:
        current["trial"] = trial
        trial.set_user_attr("worker", WORKER)
        values = {p.name: suggest(trial, p) for p in space.params.values()}
        if on_trial_start:
            on_trial_start(trial.number, values)
        experiment = loaded.resolve(values)
        # A retry inherits the dead trial's run_id and so resumes from its checkpoint; a new
        # trial never reuses a directory (e.g. left by a deleted study of the same name).
        run_id = trial.user_attrs.get("run_id")
        if run_id is None:
            run_id = f"t{trial.number:04d}-{name}"
            if run_dir(results, loaded.name, run_id).exists():
                run_id = new_run_id(trial.number)
        trial.set_user_attr("run_id", run_id)

        def on_eval(epoch: int, metrics: dict) -> bool:
            if on_epoch:
                on_epoch(epoch, metrics)
            trial.report(metrics[space.metric], epoch)
            return trial.should_prune()

        record = run_experiment(
            experiment, results=results, synthetic=synthetic, use_wandb=use_wandb, preset=preset,
            sweep=name, trial=trial.number, searched=values, on_eval=on_eval, run_id=run_id, progress=on_features,
        )
        if on_trial_end:
            on_trial_end(record)
        if record.status == "failed":
            trial.set_user_attr("error", record.error)
            failures.append(record.error or "failed")
            if len(failures) >= MAX_CONSECUTIVE_FAILURES:
                raise AvbenchError(f"{len(failures)} trials in a row failed; last: {record.error}")
            raise TrialFailed(record.error)
        failures.clear()
        if record.status == "pruned":
            raise optuna.TrialPruned()
        return float(record.val[metric])

    def count(states) -> int:
        return len(optuna_study.get_trials(deepcopy=False, states=states))

    if space.method == "grid":
        trials = min(trials, space.grid_size())  # a grid has no more distinct trials to give
    try:
        while count(FINISHED_STATES) < trials:
            before = len(optuna_study.get_trials(deepcopy=False))
            optuna_study.optimize(
                objective, n_trials=trials - count(FINISHED_STATES), catch=(TrialFailed,),
                callbacks=[MaxTrialsCallback(trials, states=FINISHED_STATES)],
            )
            if len(optuna_study.get_trials(deepcopy=False)) == before:
                break  # the sampler stopped the study (e.g. a finished grid)
    except KeyboardInterrupt:
        # Optuna marked the trial failed; enqueue its parameters again so the next run
        # resumes it from its last epoch checkpoint instead of losing it.
        trial = current.get("trial")
        if trial is not None:
            frozen = storage.get_trial(trial._trial_id)
            if frozen.state == TrialState.FAIL:
                RETRY(optuna_study, frozen)
        raise
    completed = optuna_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = max(completed, key=lambda t: t.value) if completed else None
    return SweepOutcome(
        study=name, storage=url, finished=count(FINISHED_STATES), failed=count((TrialState.FAIL,)),
        best_value=best.value if best else None, best_params=dict(best.params) if best else {},
        best_run_id=best.user_attrs.get("run_id") if best else None,
    )
