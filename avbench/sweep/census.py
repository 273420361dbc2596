"""What a worker must know about a study before it claims a trial, in one read: how many
trials are in each state (infeasible ones apart) and the running and waiting trials with
their worker, heartbeat and start.

On an RDB storage (SQLite, PostgreSQL) that is two aggregate queries in one connection,
however many trials the study holds; loading every trial instead (Optuna's get_all_trials)
took a dozen round trips per claim, under the claim lock. Other storages (the journal file,
replayed in memory) are read through Optuna's API.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import optuna
from optuna.storages import BaseStorage, RDBStorage, _CachedStorage
from optuna.trial import TrialState

from avbench.sweep.infeasible import INFEASIBLE
from avbench.sweep.reconnect import WORKER_ATTR
from avbench.sweep.storage import HEARTBEAT_ATTR, supports_heartbeat


@dataclass(frozen=True)
class Pending:
    """A running or waiting trial, as much of it as the dead-trial check needs."""

    trial_id: int
    number: int
    state: TrialState
    worker: str | None  # WORKER_ATTR: host#pid-namespace:pid of the worker that claimed it
    started: datetime | None  # naive local time, as FrozenTrial.datetime_start
    has_params: bool
    beaten: bool  # a heartbeat was recorded for it
    stale: bool  # its last heartbeat is older than the storage's grace period


@dataclass
class Census:
    counts: Counter = field(default_factory=Counter)  # TrialState, or INFEASIBLE for the infeasible ones
    pending: list[Pending] = field(default_factory=list)  # by trial number

    @property
    def running(self) -> list[Pending]:
        return [p for p in self.pending if p.state == TrialState.RUNNING]

    @property
    def waiting(self) -> list[Pending]:
        return [p for p in self.pending if p.state == TrialState.WAITING]

    @property
    def finished(self) -> int:
        """Trials that count toward `--trials`: complete or pruned, not rejected as infeasible."""
        return self.counts[TrialState.COMPLETE] + self.counts[TrialState.PRUNED]


def rdb_of(storage: BaseStorage) -> RDBStorage | None:
    """The RDBStorage behind a study's storage (Optuna wraps it in a cache), if it is one."""
    backend = storage._backend if isinstance(storage, _CachedStorage) else storage
    return backend if isinstance(backend, RDBStorage) else None


def take_census(study: optuna.Study) -> Census:
    rdb = rdb_of(study._storage)
    if rdb is None:
        return _census_of_trials(study)
    retry = getattr(rdb, "_retry", None)  # avbench.sweep.reconnect: wait out a server restart
    return retry(lambda: _rdb_census(rdb, study._study_id)) if retry else _rdb_census(rdb, study._study_id)


def _census_of_trials(study: optuna.Study) -> Census:
    storage = study._storage
    stale = set(storage._get_stale_trial_ids(study._study_id)) if supports_heartbeat(storage) else set()
    census = Census()
    for trial in study.get_trials(deepcopy=False):
        infeasible = INFEASIBLE in trial.user_attrs
        census.counts[INFEASIBLE if infeasible else trial.state] += 1
        if trial.state in (TrialState.RUNNING, TrialState.WAITING):
            worker = trial.user_attrs.get(WORKER_ATTR)
            census.pending.append(
                Pending(
                    trial._trial_id,
                    trial.number,
                    trial.state,
                    None if worker is None else str(worker),
                    trial.datetime_start,
                    bool(trial.params),
                    HEARTBEAT_ATTR in trial.system_attrs,
                    trial._trial_id in stale,
                )
            )
    return census


def _rdb_census(rdb: RDBStorage, study_id: int) -> Census:
    from optuna.storages._rdb import models
    from sqlalchemy import and_, exists, func, select

    trials = models.TrialModel.__table__
    attrs = models.TrialUserAttributeModel.__table__
    infeasible = attrs.alias("infeasible")
    worker = attrs.alias("worker")
    beats = models.TrialHeartbeatModel.__table__
    params = models.TrialParamModel.__table__
    marked_infeasible = and_(infeasible.c.trial_id == trials.c.trial_id, infeasible.c.key == INFEASIBLE)
    counts = (
        select(trials.c.state, func.count(trials.c.trial_id), func.count(infeasible.c.trial_id))
        .select_from(trials.outerjoin(infeasible, marked_infeasible))
        .where(trials.c.study_id == study_id)
        .group_by(trials.c.state)
    )
    marked_worker = and_(worker.c.trial_id == trials.c.trial_id, worker.c.key == WORKER_ATTR)
    pending = (
        select(
            trials.c.trial_id,
            trials.c.number,
            trials.c.state,
            trials.c.datetime_start,
            worker.c.value_json,
            beats.c.heartbeat,
            exists().where(params.c.trial_id == trials.c.trial_id),
            func.now(),
        )
        .select_from(trials.outerjoin(worker, marked_worker).outerjoin(beats, beats.c.trial_id == trials.c.trial_id))
        .where(trials.c.study_id == study_id, trials.c.state.in_((TrialState.RUNNING, TrialState.WAITING)))
        .order_by(trials.c.number)
    )
    census = Census()
    # Two reads, no writes: no transaction to begin and roll back (two round trips fewer).
    with rdb.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for state, total, infeasible_count in connection.execute(counts):
            census.counts[state] += total - infeasible_count
            census.counts[INFEASIBLE] += infeasible_count
        rows = connection.execute(pending).all()
    grace = _grace_period(rdb)
    for trial_id, number, state, started_utc, worker_json, beat, has_params, now in rows:
        census.pending.append(
            Pending(
                trial_id,
                number,
                state,
                None if worker_json is None else str(json.loads(worker_json)),
                _local(started_utc),
                bool(has_params),
                beat is not None,
                # As Optuna's own check: the database's clock stamps the beats and reads them.
                grace is not None and beat is not None and (now.replace(tzinfo=None) - beat).total_seconds() > grace,
            )
        )
    return census


def _grace_period(rdb: RDBStorage) -> float | None:
    if not supports_heartbeat(rdb):
        return None
    return rdb.grace_period if rdb.grace_period is not None else 2 * rdb.heartbeat_interval


def _local(utc: datetime | None) -> datetime | None:
    """The trials table keeps naive UTC; FrozenTrial and the grace checks use naive local time."""
    return None if utc is None else utc.replace(tzinfo=UTC).astimezone().replace(tzinfo=None)
