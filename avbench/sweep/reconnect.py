"""A PostgreSQL study storage that survives the server going away (a restart, a failover, a
dropped network): every storage call waits and reconnects with back-off instead of failing
the trial or killing the worker, for up to AVBENCH_STORAGE_WAIT_S seconds (default 600),
then stops in one line naming the storage.

A write retried after a lost connection may already have been committed, so the two writes
that are not idempotent look before they write again:
- `set_trial_state_values` that finds the trial already in the state (and values) it was
  asked for reports success, so a trial told complete is never failed nor told twice;
- `create_new_trial` (asking or re-enqueueing a trial, always under the claim lock) first
  looks for the trial its lost attempt created and returns that one, so no duplicate trial
  is counted or run. One that slips through (the lock itself lost in the restart) is a
  running trial without a worker, failed by avbench.sweep.liveness after the grace period.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from functools import wraps

from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from avbench.errors import StorageError

WAIT_ENV = "AVBENCH_STORAGE_WAIT_S"
DEFAULT_WAIT_S = 600.0
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 10.0
WORKER_ATTR = "worker"  # set on a trial right after it is claimed (avbench.sweep.backends.optuna)
# Storage methods that talk to the server; internals they call are not wrapped again.
RETRIED = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_all_studies",
    "set_trial_param",
    "_set_trial_param",  # optuna's _CachedStorage calls these private ones
    "_get_trials",
    "_get_best_trial_id",
    "get_trial_param",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
    "get_best_trial",
    "record_heartbeat",
    "_get_stale_trial_ids",
)


def wait_limit() -> float:
    raw = os.environ.get(WAIT_ENV, "")
    try:
        return float(raw) if raw else DEFAULT_WAIT_S
    except ValueError:
        raise StorageError(f"{WAIT_ENV}={raw!r}: expected a number of seconds") from None


def connection_lost(exc: BaseException) -> bool:
    """The error, or one it was raised from, says the server or the connection went away
    (optuna wraps SQLAlchemy's errors in StorageInternalError)."""
    from sqlalchemy import exc as sa_exc

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return True
        if isinstance(seen, sa_exc.DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def first_line(exc: BaseException) -> str:
    text = str(exc.__cause__ or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Reconnect:
    """One outage as seen by one call: sleeps between attempts, gives up after the limit."""

    def __init__(self, where: str):
        self.where, self.limit = where, wait_limit()
        self.started = time.monotonic()
        self.backoff = FIRST_BACKOFF_S
        self.attempts = 0

    def wait(self, exc: BaseException) -> None:
        """Sleep before the next attempt, or raise the one line that ends the wait."""
        waited = time.monotonic() - self.started
        if waited + self.backoff > self.limit:
            raise StorageError(
                f"storage {self.where} unreachable for {waited:.0f} s ({first_line(exc)}); "
                f"gave up after {self.limit:g} s ({WAIT_ENV})"
            ) from None
        if self.attempts == 0:
            print(
                f"storage {self.where} unreachable ({first_line(exc)}); reconnecting for up to {self.limit:g} s",
                file=sys.stderr,
                flush=True,
            )
        self.attempts += 1
        time.sleep(self.backoff)
        self.backoff = min(MAX_BACKOFF_S, self.backoff * 2)

    def done(self) -> None:
        if self.attempts:
            print(f"storage {self.where} reachable again", file=sys.stderr, flush=True)


def retrying(call: Callable, where: str, *, after_loss: Callable | None = None):
    """Run call() until it goes through. `after_loss()`, when given, runs before each retry
    and returns (True, result) when the lost attempt turns out to have been committed."""
    outage: Reconnect | None = None
    while True:
        try:
            if outage is not None and after_loss is not None:
                committed, result = after_loss()
                if committed:
                    outage.done()
                    return result
            result = call()
        except Exception as exc:
            if not connection_lost(exc):
                raise
            outage = outage or Reconnect(where)
            outage.wait(exc)
            continue
        if outage is not None:
            outage.done()
        return result


class ReconnectingRDBStorage(RDBStorage):
    """Optuna's RDBStorage whose calls outlast a database restart (see the module's docs)."""

    _local = threading.local()  # per thread: inside a retried call, nested calls are not retried

    def __init__(self, url: str, **kwargs):
        from avbench.sweep.storage import display_url

        self._where = display_url(url)
        super().__init__(url, **kwargs)

    def _retry(self, call: Callable, after_loss: Callable | None = None):
        if getattr(self._local, "busy", False):
            return call()
        self._local.busy = True
        try:
            return retrying(call, self._where, after_loss=after_loss)
        finally:
            self._local.busy = False

    def set_trial_state_values(self, trial_id: int, state: TrialState, values=None) -> bool:
        def committed() -> tuple[bool, bool]:
            trial = RDBStorage.get_trial(self, trial_id)
            if state == TrialState.RUNNING:
                # Claimed under the claim lock: running without a worker means our lost attempt.
                return trial.state == TrialState.RUNNING and WORKER_ATTR not in trial.user_attrs, True
            same_values = values is None or list(trial.values or ()) == list(values)
            return trial.state == state and same_values, True

        return self._retry(lambda: RDBStorage.set_trial_state_values(self, trial_id, state, values), committed)

    def _create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> FrozenTrial:
        # create_new_trial and optuna's _CachedStorage both come here.
        def committed() -> tuple[bool, FrozenTrial | None]:
            found = created_by_lost_attempt(RDBStorage.get_all_trials(self, study_id, deepcopy=False), template_trial)
            return (True, RDBStorage.get_trial(self, found)) if found is not None else (False, None)

        return self._retry(lambda: RDBStorage._create_new_trial(self, study_id, template_trial), committed)


def created_by_lost_attempt(trials: list[FrozenTrial], template: FrozenTrial | None) -> int | None:
    """The id of the trial a lost create_new_trial committed, if it did: the newest trial that
    is still exactly what it was created as (nothing asked has touched it yet)."""
    for trial in reversed(trials):
        if template is None:
            fresh = trial.state == TrialState.RUNNING and not trial.params and WORKER_ATTR not in trial.user_attrs
        else:
            fresh = (
                trial.state == template.state
                and trial.params == template.params
                and trial.user_attrs == template.user_attrs
                and trial.system_attrs == template.system_attrs
            )
        if fresh:
            return trial._trial_id
    return None


def _wrap(name: str) -> None:
    method = getattr(RDBStorage, name)

    @wraps(method)
    def retried(self: ReconnectingRDBStorage, *args, **kwargs):
        return self._retry(lambda: method(self, *args, **kwargs))

    setattr(ReconnectingRDBStorage, name, retried)


for _name in RETRIED:
    _wrap(_name)
