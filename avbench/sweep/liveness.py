"""Which trials are alive: a worker's identity, heartbeats while a trial trains, and failing
over the trials of workers that are gone (a dead local process at once, any host after the
heartbeat grace period) so another worker resumes them."""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from avbench.sweep.census import Census, Pending, take_census
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


def _orphaned(trial: Pending, heartbeats: bool) -> bool:
    """Running for longer than the grace period without a worker (asked by a claim whose
    connection was lost, the database restarting, and never taken: avbench.sweep.reconnect),
    or, on a storage with heartbeats, without a single beat (its worker died between the
    claim and its first beat)."""
    if trial.started is None or (trial.worker is not None and (trial.beaten or not heartbeats)):
        return False
    return (datetime.now() - trial.started).total_seconds() > GRACE_PERIOD_S


def recover_dead_trials(study: optuna.Study, census: Census | None = None) -> int:
    """Fail and re-enqueue trials whose worker is gone: at once for a dead process on this
    host, after the heartbeat grace period for any host. Call under the claim lock, with the
    census taken under it (or none: one is taken here)."""
    census = census or take_census(study)
    host = _host()
    heartbeats = supports_heartbeat(study._storage)
    count = 0
    for trial in census.running:
        worker_host, _, pid = (trial.worker or "").rpartition(":")
        if worker_host == host and pid.isdigit() and not _pid_alive(int(pid)):
            count += _fail_and_retry(study, trial.trial_id)
        elif trial.stale:
            count += _fail_and_retry(study, trial.trial_id)
        elif _orphaned(trial, heartbeats):
            # One with values was a re-enqueued trial: queue it again. A fresh one has nothing to keep.
            count += _fail_and_retry(study, trial.trial_id) if trial.has_params else _fail(study, trial.trial_id)
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
