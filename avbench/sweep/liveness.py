"""Which trials are alive: a worker's identity, heartbeats while a trial trains, and failing
over the trials of workers that are gone (a dead local process at once, any host after the
heartbeat grace period) so another worker resumes them."""

from __future__ import annotations

import os
import socket
import threading
import warnings
from datetime import datetime

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import TrialState

from avbench.sweep.reconnect import WORKER_ATTR
from avbench.sweep.storage import GRACE_PERIOD_S, RETRY, supports_heartbeat


def _host() -> str:
    """This host, and its process-id namespace where it has one: two containers may share a
    host name but never a pid namespace, and a pid means something only inside its own."""
    try:
        return f"{socket.gethostname()}#{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return socket.gethostname()


def worker_id() -> str:
    return f"{_host()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fail(study: optuna.Study, trial_id: int) -> bool:
    try:
        return study._storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except UpdateFinishedTrialError:
        return False  # another worker got there first


def _fail_and_retry(study: optuna.Study, trial_id: int) -> bool:
    if not _fail(study, trial_id):
        return False
    RETRY(study, study._storage.get_trial(trial_id))
    return True


def _orphaned(trial: optuna.trial.FrozenTrial) -> bool:
    """Running without a worker for longer than the grace period: asked by a claim whose
    connection was lost (the database restarted) and never taken (avbench.sweep.reconnect)."""
    if WORKER_ATTR in trial.user_attrs or trial.datetime_start is None:
        return False
    return (datetime.now() - trial.datetime_start).total_seconds() > GRACE_PERIOD_S


def recover_dead_trials(study: optuna.Study) -> int:
    """Fail and re-enqueue trials whose worker is gone: at once for a dead process on this
    host, after the heartbeat grace period for any host. Call under the claim lock."""
    host = _host()
    count = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get(WORKER_ATTR, "")).rpartition(":")
        if worker_host == host and pid.isdigit() and not _pid_alive(int(pid)):
            count += _fail_and_retry(study, trial._trial_id)
        elif _orphaned(trial):
            # One with values was a re-enqueued trial: queue it again. A fresh one has nothing to keep.
            count += _fail_and_retry(study, trial._trial_id) if trial.params else _fail(study, trial._trial_id)
    if supports_heartbeat(study._storage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    return count


class Heartbeat:
    """Beats for one trial while it trains, so other workers know it is alive."""

    def __init__(self, storage, trial_id: int):
        self._storage, self._trial_id = storage, trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        interval = self._storage.get_heartbeat_interval()
        while not self._stop.wait(interval):
            try:
                self._storage.record_heartbeat(self._trial_id)
            except Exception:  # a storage hiccup: the next beat tries again
                continue

    def __enter__(self) -> Heartbeat:
        if supports_heartbeat(self._storage):
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
