"""The claim that serialises a shared study's workers stays cheap: the census it takes under
the claim lock says what Optuna's own trials say, on an RDB storage (two queries) and on a
journal file; it loads no whole trial and makes as many queries for a study of 30 trials as
for one of 3; and a trial whose worker died before its first heartbeat is not lost."""

from __future__ import annotations

from collections import Counter

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from avbench.catalog import load_experiment
from avbench.sweep import liveness
from avbench.sweep.backends.optuna import StudyHandle
from avbench.sweep.census import take_census
from avbench.sweep.claim import claim_trial
from avbench.sweep.infeasible import INFEASIBLE
from avbench.sweep.space import resolve_space
from avbench.sweep.storage import claim_lock, open_storage, resolve_storage_url

SPACE = resolve_space(load_experiment("spectrogram-cnn-cremad", preset="tiny"), None)


def new_study(tmp_path, suffix: str) -> tuple[optuna.Study, str]:
    url = resolve_storage_url(str(tmp_path / f"s{suffix}"), tmp_path, "x")
    return optuna.create_study(study_name="s", storage=open_storage(url)), url


def add_finished(study: optuna.Study, count: int) -> None:
    lr = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    for number in range(count):
        study.add_trial(optuna.trial.create_trial(params={"lr": 1e-3}, distributions={"lr": lr}, value=0.1 * number))


@pytest.mark.parametrize("suffix", [".db", ".log"])
def test_the_census_says_what_the_trials_say(tmp_path, suffix):
    study, _ = new_study(tmp_path, suffix)
    add_finished(study, 2)
    study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED, intermediate_values={1: 0.2}))
    study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED, user_attrs={INFEASIBLE: "too small"}))
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
    running = study.ask()
    running.set_user_attr("worker", "elsewhere#1:42")
    study._storage.record_heartbeat(running._trial_id)
    bare = study.ask()
    study.enqueue_trial({"lr": 3e-3}, user_attrs={"run_id": "t0001"})
    census = take_census(study)
    trials = study.get_trials()
    assert census.counts == Counter(INFEASIBLE if INFEASIBLE in t.user_attrs else t.state for t in trials)
    assert census.finished == 3
    pending = [(p.number, p.state, p.worker, p.beaten, p.stale, p.has_params) for p in census.pending]
    waiting = next(t for t in trials if t.state == TrialState.WAITING)
    assert pending == [
        (running.number, TrialState.RUNNING, "elsewhere#1:42", True, False, False),
        (bare.number, TrialState.RUNNING, None, False, False, False),
        (waiting.number, TrialState.WAITING, None, False, False, False),  # fixed params are set once it runs
    ]
    assert [p.started for p in census.pending] == [t.datetime_start for t in trials[-3:]]


def statements_under_the_lock(handle: StudyHandle, engine) -> list[str]:
    """Every SQL statement the next claim sends while it holds the claim lock."""
    seen: list[str] = []
    held = [False]

    def record(conn, cursor, statement, *args) -> None:
        if held[0]:
            seen.append(statement)

    class Watched:
        lost = False

        def __enter__(self):
            handle_lock.__enter__()
            held[0] = True

        def __exit__(self, *exc):
            held[0] = False
            return handle_lock.__exit__(*exc)

    handle_lock, handle.lock = handle.lock, Watched()
    sqlalchemy.event.listen(engine, "before_cursor_execute", record)
    try:
        trial = claim_trial(handle, SPACE)
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", record)
        handle.lock = handle_lock
    assert trial.user_attrs["worker"] == liveness.worker_id()
    assert trial._trial_id in {t._trial_id for t in handle.study.get_trials(states=(TrialState.RUNNING,))}
    return seen


def test_a_claim_loads_no_whole_trial_and_costs_the_same_in_a_larger_study(tmp_path):
    counts = []
    for size in (3, 30):
        study, url = new_study(tmp_path / str(size), ".db")
        add_finished(study, size)
        handle = StudyHandle(study, "s", url, "random", 0, size + 5, [], claim_lock(url, "s"))
        seen = statements_under_the_lock(handle, study._storage._backend.engine)
        # Loading a whole trial (Optuna's get_trial / get_all_trials) reads these tables.
        assert not [s for s in seen if "FROM trial_values" in s or "FROM trial_intermediate_values" in s]
        counts.append(len(seen))
    assert counts[0] == counts[1]


def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_failed_after_the_grace_period(tmp_path, monkeypatch):
    study, _ = new_study(tmp_path, ".db")
    silent, beating = study.ask(), study.ask()
    for trial in (silent, beating):
        trial.set_user_attr("worker", "another-host#1:42")
    study._storage.record_heartbeat(beating._trial_id)
    assert liveness.recover_dead_trials(study) == 0  # within the grace period
    monkeypatch.setattr(liveness, "GRACE_PERIOD_S", 0)
    assert liveness.recover_dead_trials(study) == 1
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {silent.number: TrialState.FAIL, beating.number: TrialState.RUNNING}
