"""The default backend: Optuna, one worker loop per process against a shared storage.

`trials` counts finished (complete or pruned) trials in total, across restarts and workers.
Each worker takes a trial only under the storage's claim lock and only while
finished + running < trials, so workers asking at the same moment never overshoot; a trial
that fails (or whose worker dies) frees its place for the next claim. A trial whose worker
died (kill -9, a lost machine, Ctrl-C) is failed and re-enqueued with the same parameters;
its retry inherits the run_id and so resumes from the dead trial's last epoch checkpoint.
A suggestion the model cannot be built with is rejected untrained (avbench.sweep.infeasible).
The trial itself runs in avbench.sweep.core; claim.py (taking a trial), census.py, storage.py,
samplers.py and liveness.py are this backend's support modules, avbench.sweep.launch.local
its `--workers`.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from avbench.config import LoadedExperiment
from avbench.context import RunContext
from avbench.results.records import RunRecord
from avbench.sweep.claim import Done, claim_trial
from avbench.sweep.conditional import draw
from avbench.sweep.core import (
    Backend,
    SweepOutcome,
    SweepPlan,
    Trial,
    config_fingerprint,
    refuse_other_config,
    run_trials,
    study_name,
)
from avbench.sweep.infeasible import INFEASIBLE
from avbench.sweep.liveness import Heartbeat
from avbench.sweep.objectives import Objective, is_multi
from avbench.sweep.samplers import (
    VAL_EXAMPLES,
    check_sampler,
    is_grid_exhausted,
    make_pruner,
    make_sampler,
    sampler_name,
)
from avbench.sweep.space import Param, SearchSpace, plain_name
from avbench.sweep.storage import (
    RETRY,
    claim_lock,
    display_url,
    open_storage,
    resolve_storage_url,
)
from avbench.sweep.warm_start import enqueue_first

SUPPORTS_WORKERS = True  # --workers N: N processes against the same storage (avbench.sweep.launch.local)

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
IDLE_POLL_S = 0.5  # how often a worker with no trial to take looks again (the sweep's last trials)


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
    multi: bool = False  # several objectives: tell a tuple, never report (no pruning)


def suggest(trial: optuna.Trial, param: Param, key: str):
    """One value, under its engine key (a branch's parameter is keyed by its branch)."""
    if param.kind == "categorical":
        return trial.suggest_categorical(key, list(param.choices))
    if param.kind == "int":
        return trial.suggest_int(key, int(param.low), int(param.high), log=param.log)
    return trial.suggest_float(key, param.low, param.high, log=param.log, step=param.step)


def open_study(
    loaded: LoadedExperiment,
    space: SearchSpace,
    ctx: RunContext,
    *,
    trials: int,
    storage_url: str | None = None,
    study: str | None = None,
    sampler: str | None = None,
    pruner: str | None = None,
    objectives: tuple[Objective, ...] = (),
) -> StudyHandle:
    """Create the study or join it; refuse a study made from another config, space or objectives."""
    # Our display reports every trial in one line; optuna would add tracebacks for each failure.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    name = study or study_name(loaded, ctx.preset, ctx.synthetic)
    url = resolve_storage_url(storage_url, ctx.results, loaded.name)
    multi = is_multi(objectives)
    chosen = sampler_name(space, sampler, objectives=len(objectives) or 1, trials=trials)
    notes = check_sampler(space, chosen, len(objectives) or 1)
    if multi:
        notes.append("pruning is off: Optuna cannot prune a study with several objectives")
    seed = loaded.config.sweep.seed
    fingerprint = config_fingerprint(loaded, space, objectives)
    optuna_study = optuna.create_study(
        study_name=name,
        storage=open_storage(url),
        load_if_exists=True,
        directions=[o.direction for o in objectives] if multi else ["maximize"],
        sampler=make_sampler(space, chosen, seed),
        pruner=optuna.pruners.NopPruner()
        if multi
        else make_pruner(
            pruner, loaded.config.sweep.pruner, space, loaded.config.train.epochs, loaded.config.sweep.objective
        ),
    )
    known = optuna_study.user_attrs.get("config_fingerprint")
    if len(optuna_study.directions) != (len(objectives) if multi else 1):
        known = known or "another number of objectives"
    refuse_other_config(known, fingerprint, f"study '{name}' in {display_url(url)}")
    if known is None:
        optuna_study.set_user_attr("config_fingerprint", fingerprint)
        optuna_study.set_user_attr("experiment", loaded.name)
        optuna_study.set_user_attr("metric", space.metric)
        if multi:
            optuna_study.set_user_attr("objectives", [str(o) for o in objectives])
    if chosen == "grid":
        trials = min(trials, space.grid_size())  # a grid has no more distinct trials to give
    return StudyHandle(optuna_study, name, url, chosen, seed, trials, notes, claim_lock(url, name), multi)


def is_infeasible(trial: optuna.trial.FrozenTrial) -> bool:
    return INFEASIBLE in trial.user_attrs


def count_finished(trials: list[optuna.trial.FrozenTrial]) -> int:
    """Trials that count toward `--trials`: complete or pruned, not rejected as infeasible."""
    return sum(t.state in FINISHED_STATES and not is_infeasible(t) for t in trials)


class OptunaTrial(Trial):
    """An asked trial: its values suggested, told how it ended."""

    def __init__(self, study: optuna.Study, trial: optuna.Trial, space: SearchSpace, multi: bool = False):
        # Define-by-run: a branch's parameters are suggested only when its choice is drawn.
        values = space.complete(draw(space.params, lambda param, key: suggest(trial, param, key)))
        super().__init__(trial.number, values, run_id=trial.user_attrs.get("run_id"))
        self.study, self.trial, self.multi = study, trial, multi
        self.examples: int | None = None

    def keep_alive(self) -> AbstractContextManager:
        return Heartbeat(self.study._storage, self.trial._trial_id)

    def started(self, run_id: str) -> None:
        self.trial.set_user_attr("run_id", run_id)

    def scored_on(self, examples: int) -> None:
        if examples != self.examples:  # once per trial: the split does not change between epochs
            self.trial.set_user_attr(VAL_EXAMPLES, examples)
            self.examples = examples

    def report(self, epoch: int, value: float) -> bool:
        if self.multi:  # Optuna takes no intermediate values from a multi-objective trial
            return False
        self.trial.report(value, epoch)
        return self.trial.should_prune()

    def reject(self, reason: str) -> None:
        self.trial.set_user_attr(INFEASIBLE, reason)
        # PRUNED, not FAIL: TPE learns only from complete and pruned trials; the violated
        # constraint (> 0) puts it among TPE's worst.
        self.trial.set_constraint(INFEASIBLE, 1.0)
        self.study.tell(self.trial, state=TrialState.PRUNED)

    def finish(self, record: RunRecord, values: tuple[float, ...] | None) -> None:
        try:
            if record.oom_retry:
                self.trial.set_user_attr("oom_retry", record.oom_retry)
            if record.status == "failed":
                self.trial.set_user_attr("error", record.error or "failed")
                self.study.tell(self.trial, state=TrialState.FAIL)
            elif record.status == "pruned":
                self.study.tell(self.trial, state=TrialState.PRUNED)
            elif values is None:
                self.trial.set_user_attr("error", "an objective was not measured")
                self.study.tell(self.trial, state=TrialState.FAIL)
            else:
                self.study.tell(self.trial, list(values) if self.multi else values[0])
        except UpdateFinishedTrialError:
            # Another worker took this trial for dead (no heartbeat within the grace period) and
            # re-enqueued it; its retry owns the result now.
            record.status, record.error = "failed", "declared dead by another worker (heartbeat missed)"

    def fail(self, reason: str) -> None:
        self.trial.set_user_attr("error", reason)
        self.study.tell(self.trial, state=TrialState.FAIL)

    def interrupt(self) -> None:
        self.study.tell(self.trial, state=TrialState.FAIL)
        RETRY(self.study, self.study._storage.get_trial(self.trial._trial_id))


class OptunaBackend(Backend):
    """One worker of the study: claims trials until the study needs no more."""

    def __init__(self, handle: StudyHandle, space: SearchSpace):
        self.handle, self.space = handle, space
        self.name, self.target = handle.name, handle.target

    def next_trial(self) -> OptunaTrial | None:
        while (trial := claim_trial(self.handle, self.space)) is None:
            time.sleep(IDLE_POLL_S)  # the last trials run elsewhere; one may fail and need replacing
        return None if trial is Done else OptunaTrial(self.handle.study, trial, self.space, self.handle.multi)

    def finished(self) -> int:
        return count_finished(self.handle.study.get_trials(deepcopy=False))

    def outcome(self) -> SweepOutcome:
        return sweep_outcome(self.handle)


def open_plan(plan: SweepPlan) -> StudyHandle:
    """The study a plan asks for, created or joined."""
    request = plan.request
    return open_study(
        plan.loaded,
        plan.space,
        plan.ctx,
        trials=plan.target,
        storage_url=request.storage,
        study=request.study,
        sampler=request.sampler,
        pruner=request.pruner,
        objectives=plan.objectives,
    )


def sweep(plan: SweepPlan) -> SweepOutcome | None:
    """Open (or join) the study and work on it here, or in --workers processes, until it has
    its finished trials; or submit the workers to Slurm (None unless told to --wait)."""
    from avbench.sweep.launch.local import follow_parent, run_workers
    from avbench.sweep.launch.slurm import stop_before_time_limit, submit_array

    handle = open_plan(plan)
    handle.notes.extend(enqueue_first(handle.study, plan))
    for note in handle.notes:
        plan.view.say(f"note: {note}")
    plan.view.say(
        f"sweep {plan.loaded.name}: {handle.target} trials over {', '.join(plan.space.params)} "
        f"({plan.space.source}), sampler {handle.sampler}, {plan.request.workers} worker(s), study {handle.name}"
    )
    if plan.request.launcher == "slurm":
        return submit_array(handle, plan)
    if plan.request.workers > 1 or plan.request.placement:
        return run_workers(handle, plan)
    follow_parent()  # a no-op unless this process is one of a parent's --workers
    stop_before_time_limit()  # SIGUSR1, Slurm's warning before a task's time limit
    return run_trials(OptunaBackend(handle, plan.space), plan)


def sweep_outcome(handle: StudyHandle) -> SweepOutcome:
    trials = handle.study.get_trials(deepcopy=False)
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(completed, key=lambda t: t.value) if completed and not handle.multi else None
    return SweepOutcome(
        study=handle.name,
        storage=display_url(handle.url),
        target=handle.target,
        finished=count_finished(trials),
        infeasible=sum(map(is_infeasible, trials)),
        failed=sum(t.state == TrialState.FAIL for t in trials),
        best_value=best.value if best else None,
        best_params={plain_name(k): v for k, v in best.params.items()} if best else {},
        best_run_id=best.user_attrs.get("run_id") if best else None,
        grid_exhausted=is_grid_exhausted(handle.study.sampler, handle.study),
        front=pareto_rows(handle.study) if handle.multi else [],
    )


def pareto_rows(study: optuna.Study) -> list[dict]:
    """The study's non-dominated complete trials, by their first objective."""
    front = sorted(study.best_trials, key=lambda t: t.values[0], reverse=study.directions[0].name == "MAXIMIZE")
    return [
        {
            "trial": t.number,
            "values": list(t.values),
            "params": {plain_name(k): v for k, v in t.params.items()},
            "run_id": t.user_attrs.get("run_id"),
        }
        for t in front
    ]
