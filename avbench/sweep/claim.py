"""Taking a trial from a shared study, for the Optuna backend's workers.

`trials` counts finished (complete or pruned) trials in total, across restarts and workers.
A worker takes a trial only under the study's claim lock (avbench.sweep.storage) and only
while finished + running < trials, so workers asking at the same moment never overshoot.
Claims are serialised by that lock, so the time a claim holds it bounds how many claims a
second any number of workers make (benchmarks/sweep_scale.py): under it a claim only takes
the study's census (two queries, avbench.sweep.census), fails the trials of dead workers,
and writes the new trial already marked with its worker (one transaction), or takes the
oldest re-enqueued one. The first heartbeat, the devices mark and the sampler's work (when
the trial's values are suggested) come after the lock is released.
"""

from __future__ import annotations

import os
import warnings
from datetime import datetime
from typing import TYPE_CHECKING

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from avbench.distributed import VISIBLE_ENV
from avbench.sweep.census import take_census
from avbench.sweep.liveness import recover_dead_trials, worker_id
from avbench.sweep.reconnect import WORKER_ATTR
from avbench.sweep.samplers import is_grid_exhausted, make_sampler, trial_seed
from avbench.sweep.space import SearchSpace
from avbench.sweep.storage import RETRY, supports_heartbeat

if TYPE_CHECKING:
    from avbench.sweep.backends.optuna import StudyHandle


class Done:
    """claim_trial's answer when the study needs no more trials."""


def claim_trial(handle: StudyHandle, space: SearchSpace) -> optuna.Trial | type[Done] | None:
    """A new trial if the budget allows one, None to wait and look again (the running trials
    may still fail), Done when the study is finished."""
    claimed = _claim_under_lock(handle, space)
    if claimed is None or claimed is Done:
        return claimed
    study = handle.study
    trial = claimed if isinstance(claimed, optuna.Trial) else optuna.Trial(study, claimed)
    if handle.lock.lost and recheck_budget(handle, trial) is None:
        return None
    if supports_heartbeat(study._storage):
        study._storage.record_heartbeat(trial._trial_id)
    if (devices := os.environ.get(VISIBLE_ENV)) is not None:
        trial.set_user_attr("devices", devices)  # where it runs, for the parent's display
    return trial


def recheck_budget(handle: StudyHandle, trial: optuna.Trial) -> optuna.Trial | None:
    """The database restarted while the claim lock was held, which ends the lock: another
    worker may have claimed at the same moment. Keep the trial only if the budget still
    allows it; else hand it back (queued again if it was a retry with a run) and look again."""
    study = handle.study
    with handle.lock:
        census = take_census(study)
        if census.finished + census.counts[TrialState.RUNNING] <= handle.target:
            return trial
        trial.set_user_attr("error", "claimed twice while the database restarted; handed back")
        study.tell(trial, state=TrialState.FAIL)
        if trial.user_attrs.get("run_id"):
            RETRY(study, study._storage.get_trial(trial._trial_id))
    return None


def _claim_under_lock(handle: StudyHandle, space: SearchSpace) -> optuna.Trial | int | type[Done] | None:
    """The trial (or its id) taken for this worker, marked with the worker before the lock is
    released so no other worker takes it for a dead one."""
    study = handle.study
    with handle.lock:
        census = take_census(study)
        if recover_dead_trials(study, census):
            census = take_census(study)
        counts = census.counts
        if census.finished >= handle.target:
            return Done
        # A grid's seed fixes the order of its points (their grid ids), so it must stay the same.
        seed = handle.seed if handle.sampler == "grid" else trial_seed(handle.seed, sum(counts.values()))
        study.sampler = make_sampler(space, handle.sampler, seed)
        if is_grid_exhausted(study.sampler, study) and not counts[TrialState.WAITING]:
            return Done
        if census.finished + counts[TrialState.RUNNING] >= handle.target:
            return None
        if handle.sampler == "grid":
            return _ask_grid_point(study)
        for waiting in census.waiting:  # a re-enqueued trial comes first, the oldest first
            if _take_waiting(study, waiting.trial_id):
                return waiting.trial_id
        return study._storage.create_new_trial(study._study_id, template_trial=_fresh_trial())


def _fresh_trial() -> optuna.trial.FrozenTrial:
    """A new running trial already marked with its worker, written in one transaction."""
    return optuna.trial.FrozenTrial(
        number=-1,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=datetime.now(),
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={WORKER_ATTR: worker_id()},
        system_attrs={},
        intermediate_values={},
        trial_id=-1,
    )


def _take_waiting(study: optuna.Study, trial_id: int) -> bool:
    """Optuna's own pop of a waiting trial (as Study.ask does it), then the worker's mark."""
    try:
        if not study._storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
            return False
    except UpdateFinishedTrialError:
        return False
    study._storage.set_trial_user_attr(trial_id, WORKER_ATTR, worker_id())
    return True


def _ask_grid_point(study: optuna.Study) -> optuna.Trial:
    """The grid sampler picks its point as the trial is made (before_trial), which must happen
    under the lock so no two workers pick the same one."""
    with warnings.catch_warnings():
        # Optuna warns that heartbeats are meant for Study.optimize; this loop beats itself.
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        trial = study.ask()  # a re-enqueued (WAITING) trial comes first
    trial.set_user_attr(WORKER_ATTR, worker_id())
    return trial
