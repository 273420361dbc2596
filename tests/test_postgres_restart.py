"""A PostgreSQL study storage stopped and started again while it is used: calls wait and
reconnect, nothing is failed or counted twice (avbench.sweep.reconnect)."""

from __future__ import annotations

import gc
import os
import threading
import time

import optuna
import pytest

from avbench.errors import StorageError
from avbench.sweep.reconnect import WAIT_ENV, created_by_lost_attempt
from avbench.sweep.storage import open_storage, resolve_storage_url
from tests.postgres import PostgresUnavailable, postgres_instance
from tests.test_sweep_workers import STUDY, assert_every_trial_accounted_for, start_sweep

pytestmark = pytest.mark.heavy  # minutes of sweeps: scheduled first (tests/conftest.py)


@pytest.fixture
def server():
    try:
        with postgres_instance() as instance:
            yield instance
    except PostgresUnavailable as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL is required in CI (.ci/run installs it): {exc}")
        pytest.skip(f"no local PostgreSQL server could be started: {exc}")


def test_a_tell_during_a_restart_waits_for_the_server_and_counts_once(server, capfd):
    url = resolve_storage_url(server.url, None, "x")
    study = optuna.create_study(study_name="s", storage=open_storage(url))
    trial = study.ask()
    trial.suggest_float("lr", 0.1, 1.0)
    server.stop()
    told = threading.Thread(target=study.tell, args=(trial, 0.5))
    told.start()
    time.sleep(2.0)  # the tell meets a stopped server and waits
    assert told.is_alive()
    server.start()
    told.join(timeout=60)
    assert not told.is_alive()
    trials = study.get_trials()
    assert [(t.state, t.value) for t in trials] == [(optuna.trial.TrialState.COMPLETE, 0.5)]
    err = capfd.readouterr().err
    assert "unreachable" in err and "reconnecting for up to" in err and "reachable again" in err


def test_a_server_that_stays_away_ends_the_wait_in_one_line(server, monkeypatch):
    url = resolve_storage_url(server.url, None, "x")
    study = optuna.create_study(study_name="s", storage=open_storage(url))
    server.stop()
    monkeypatch.setenv(WAIT_ENV, "1.5")
    with pytest.raises(
        StorageError, match=r"storage postgresql\+psycopg2://postgres@127.0.0.1:\d+/avbench unreachable"
    ):
        study.get_trials()
    server.start()


def test_a_lost_create_is_found_instead_of_made_twice(server):
    """The trial a create_new_trial committed before its connection was lost is the one a
    retry returns: a fresh running trial nobody has claimed, or an exact re-enqueued copy."""
    study = optuna.create_study(study_name="s", storage=open_storage(resolve_storage_url(server.url, None, "x")))
    claimed = study.ask()
    claimed.set_user_attr("worker", "host:1")
    lost = study.ask()
    trials = study.get_trials(deepcopy=False)
    assert created_by_lost_attempt(trials, None) == lost._trial_id
    lost.set_user_attr("worker", "host:2")
    assert created_by_lost_attempt(study.get_trials(deepcopy=False), None) is None
    study.enqueue_trial({"lr": 0.3})
    template = study.get_trials(deepcopy=False)[-1]
    assert created_by_lost_attempt(study.get_trials(deepcopy=False), template) == template._trial_id


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_four_workers_wait_out_a_database_restart(workspace, server):
    """pg_ctl stop -m fast while the workers train, start it again a few seconds later on the
    same port and data: the sweep completes with every trial counted once."""
    trials = 4  # one per worker: each of them meets the restart mid-trial
    sweep = start_sweep(
        workspace, "--workers", "4", "--trials", str(trials), "--set", "train.epochs=2", "--storage", server.url
    )
    storage = server.url.replace("postgresql://", "postgresql+psycopg2://")
    # One study object for all the polls: each load_study opens an engine whose pooled
    # connections stay open until it is garbage-collected, and a few hundred polls of those
    # fill the server's max_connections, so the workers would wait for free connections.
    opened: list[optuna.Study] = []

    def training() -> bool:
        assert sweep.poll() is None, sweep.communicate()[0][-3000:]
        if not opened:
            try:
                opened.append(optuna.load_study(study_name=STUDY, storage=storage))
            except Exception:  # the study is not created yet
                gc.collect()  # close the failed attempt's connections now
                return False
        return any(t.intermediate_values for t in opened[0].get_trials(deepcopy=False))

    wait_for(training, 400, "a trial to report an epoch")
    server.stop()
    time.sleep(3.0)
    server.start()
    output = sweep.communicate(timeout=500)[0]
    assert sweep.returncode == 0, output[-3000:]
    assert f"{trials} finished, 0 failed" in output, output[-3000:]
    assert_every_trial_accounted_for(workspace, storage, trials)
    logs = "".join(p.read_text() for p in (workspace / "results" / "studies" / STUDY).glob("worker-*.log"))
    assert "reconnecting for up to" in logs and "reachable again" in logs


def lost_after_commit(monkeypatch, name: str) -> None:
    """The server commits the call, then the connection drops before the answer arrives:
    the one fault a restart can cause that no real server can be timed to give."""
    import sqlalchemy
    from optuna.storages import RDBStorage

    original, calls = getattr(RDBStorage, name), []

    def committed_then_lost(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        calls.append(name)
        if len(calls) == 1:
            raise sqlalchemy.exc.OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))
        return result

    monkeypatch.setattr(RDBStorage, name, committed_then_lost)


def test_a_tell_committed_before_its_connection_was_lost_is_not_told_again(tmp_path, monkeypatch):
    from avbench.sweep.reconnect import ReconnectingRDBStorage

    study = optuna.create_study(study_name="s", storage=ReconnectingRDBStorage(f"sqlite:///{tmp_path / 's.db'}"))
    trial = study.ask()
    lost_after_commit(monkeypatch, "set_trial_state_values")
    study.tell(trial, 0.5)  # without the check, the retry raises UpdateFinishedTrialError
    assert [(t.state, t.value) for t in study.get_trials()] == [(optuna.trial.TrialState.COMPLETE, 0.5)]


def test_a_trial_created_before_its_connection_was_lost_is_not_created_twice(tmp_path, monkeypatch):
    from avbench.sweep.reconnect import ReconnectingRDBStorage

    study = optuna.create_study(study_name="s", storage=ReconnectingRDBStorage(f"sqlite:///{tmp_path / 's.db'}"))
    lost_after_commit(monkeypatch, "_create_new_trial")
    trial = study.ask()
    assert [t.number for t in study.get_trials()] == [trial.number] == [0]


def test_a_claim_whose_lock_went_with_the_server_is_handed_back_when_the_budget_is_spent(tmp_path):
    """The restart ended the claim lock mid-claim, so two workers claimed at once for one
    place left: the claim that then finds the budget overshot hands its trial back."""
    from avbench.sweep.backends.optuna import StudyHandle
    from avbench.sweep.claim import recheck_budget
    from avbench.sweep.storage import claim_lock

    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=open_storage(url))
    handle = StudyHandle(study, "s", url, "random", 0, 1, [], claim_lock(url, "s"))
    other = study.ask()  # the other worker's claim, made while this one held no lock
    other.set_user_attr("worker", "elsewhere:1")
    study.enqueue_trial({}, user_attrs={"run_id": "t0007-s"})  # a killed trial's retry
    ours = study.ask()
    assert recheck_budget(handle, ours) is None
    states = [(t.state.name, t.user_attrs.get("run_id")) for t in study.get_trials()]
    assert states == [("RUNNING", None), ("FAIL", "t0007-s"), ("WAITING", "t0007-s")]  # queued again
    other_failed = study.tell(other, state=optuna.trial.TrialState.FAIL)
    assert other_failed.state.name == "FAIL"
    again = study.ask()
    assert recheck_budget(handle, again) is again  # a place is free: the claim stands
