"""Sweeps that scale and survive: several workers on SQLite, PostgreSQL and a journal file,
`--trials N` held exactly, workers killed with SIGKILL again and again, and every killed trial
resumed from its checkpoint by whichever worker comes next."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from avbench.results import iter_records
from tests.conftest import AVBENCH, REPO, TINY, run_avbench
from tests.postgres import PostgresUnavailable, postgres_server

STUDY = "spectrogram-cnn-cremad-tiny-synthetic"
RUNS = Path("results/runs/spectrogram-cnn-cremad")


def sqlite_url(workspace: Path) -> str:
    return f"sqlite:///{(workspace / 'results' / 'studies' / 'spectrogram-cnn-cremad.db').resolve()}"


def start_sweep(workspace: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([*AVBENCH, "sweep", "spectrogram-cnn-cremad", *TINY, "--no-wandb", *args], cwd=workspace,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def epochs_done(run: Path) -> int:
    """Epochs a run has checkpointed: last.pt is written before the epoch's metrics line."""
    metrics = run / "metrics.jsonl"
    if not (run / "last.pt").exists() or not metrics.exists():
        return 0
    return len(metrics.read_text().splitlines())


def assert_every_trial_accounted_for(workspace: Path, storage: str, trials: int) -> list[optuna.trial.FrozenTrial]:
    """Exactly `trials` finished trials, none left running, each with its own finished run
    record whose metrics hold every epoch once."""
    study = optuna.load_study(study_name=STUDY, storage=storage)
    by_state = {state: [t for t in study.trials if t.state.name == state] for state in
                ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")}
    finished = by_state["COMPLETE"] + by_state["PRUNED"]
    assert len(finished) == trials and not by_state["RUNNING"] and not by_state["WAITING"]
    records = {r.run_id: r for r in iter_records(workspace / "results") if r.sweep == STUDY}
    run_ids = [t.user_attrs["run_id"] for t in finished]
    assert len(set(run_ids)) == trials  # none counted twice
    assert {r for r, rec in records.items() if rec.status in ("completed", "pruned")} == set(run_ids)  # none lost
    for run_id in run_ids:
        epochs = [json.loads(line)["epoch"] for line in (workspace / RUNS / run_id / "metrics.jsonl").read_text()
                  .splitlines()]
        assert epochs == list(range(1, records[run_id].epochs_run + 1))
    # Every failed trial is a killed one that was retried with the same parameters.
    for failed in by_state["FAIL"]:
        retry = next(t for t in finished if t.user_attrs["run_id"] == failed.user_attrs["run_id"])
        assert retry.params == failed.params and retry.number > failed.number
    return study.trials


def test_a_sweep_killed_again_and_again_resumes_every_trial_from_its_checkpoint(workspace):
    """kill -9 the worker whenever a trial checkpoints a new epoch (at most twice per trial,
    five times in all), start it again each time, and let the last one finish."""
    args = ("--trials", "3", "--set", "train.epochs=3", "--pruner", "none", "--threads", "1")
    kills: dict[str, int] = {}
    seen: set[tuple[str, int]] = set()
    deadline = time.time() + 400
    while sum(kills.values()) < 5:
        proc = start_sweep(workspace, *args)
        killed = False
        while not killed and proc.poll() is None:
            assert time.time() < deadline, "the sweep never reached five kills"
            for run in sorted((workspace / RUNS).glob("t*")) if (workspace / RUNS).exists() else []:
                done = epochs_done(run)
                if done and (run.name, done) not in seen and kills.get(run.name, 0) < 2:
                    seen.add((run.name, done))
                    proc.kill()
                    kills[run.name] = kills.get(run.name, 0) + 1
                    killed = True
                    break
            time.sleep(0.05)
        output = proc.communicate(timeout=60)[0]
        assert killed, f"the sweep finished after {sum(kills.values())} kills:\n{output[-2000:]}"
    done = run_avbench("sweep", "spectrogram-cnn-cremad", *TINY, "--no-wandb", *args, cwd=workspace, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    trials = assert_every_trial_accounted_for(workspace, sqlite_url(workspace), 3)
    assert sum(t.state.name == "FAIL" for t in trials) == sum(kills.values())  # one failed attempt per kill
    records = {r.run_id: r for r in iter_records(workspace / "results") if r.sweep == STUDY}
    for run_id in kills:
        assert records[run_id].resumed_from_epoch >= 1, run_id


def test_four_workers_on_sqlite_hold_the_trial_count_when_one_is_killed(workspace):
    proc = start_sweep(workspace, "--workers", "4", "--trials", "8", "--set", "train.epochs=2", "--pruner", "none")
    storage = sqlite_url(workspace)
    deadline = time.time() + 400
    victim = None
    while victim is None:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.time() < deadline, "no trial ever checkpointed an epoch"
        for run in sorted((workspace / RUNS).glob("t*")) if (workspace / RUNS).exists() else []:
            if epochs_done(run) == 1:
                running = [t for t in optuna.load_study(study_name=STUDY, storage=storage).trials
                           if t.state.name == "RUNNING" and t.user_attrs.get("run_id") == run.name]
                if running:
                    victim = running[0]
                    os.kill(int(victim.user_attrs["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
                    break
        time.sleep(0.05)
    output = proc.communicate(timeout=500)[0]
    assert proc.returncode == 0, output[-3000:]
    assert "restarting it" in output and "8 finished" in output
    assert "features ready in the cache for every worker" in output
    trials = assert_every_trial_accounted_for(workspace, storage, 8)
    assert len({t.user_attrs["worker"] for t in trials}) >= 3  # the work was shared (the restart is a new pid)
    records = [r for r in iter_records(workspace / "results") if r.sweep == STUDY]
    assert all(r.cache["misses"] == 0 for r in records)  # the parent decoded the data once for all workers
    resumed = next(r for r in records if r.run_id == victim.user_attrs["run_id"] and r.status != "failed")
    assert resumed.status in ("completed", "pruned") and resumed.resumed_from_epoch >= 1
    logs = "".join(p.read_text() for p in (workspace / "results" / "studies" / STUDY).glob("worker-*.log"))
    assert "database is locked" not in logs and "Traceback" not in logs


@pytest.fixture
def postgres_url():
    try:
        with postgres_server() as url:
            yield url
    except PostgresUnavailable as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL is required in CI (.ci/run installs it): {exc}")
        pytest.skip(f"no local PostgreSQL server could be started: {exc}")


def test_four_workers_on_postgresql(workspace, postgres_url):
    done = run_avbench("sweep", "spectrogram-cnn-cremad", *TINY, "--no-wandb", "--workers", "4", "--trials", "8",
                       "--set", "train.epochs=1", "--storage", postgres_url, cwd=workspace, timeout=500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "8 finished, 0 failed" in done.stdout
    storage = postgres_url.replace("postgresql://", "postgresql+psycopg2://")
    assert_every_trial_accounted_for(workspace, storage, 8)
    # A fifth worker joining the finished study from "another machine" finds nothing to do.
    again = run_avbench("sweep", "spectrogram-cnn-cremad", *TINY, "--no-wandb", "--trials", "8", "--set",
                        "train.epochs=1", "--storage", postgres_url, "--study", STUDY, cwd=workspace, timeout=300)
    assert again.returncode == 0 and "8 finished" in again.stdout
    assert_every_trial_accounted_for(workspace, storage, 8)


def test_two_workers_on_a_journal_file(workspace):
    journal = workspace / "shared" / "study.log"
    done = run_avbench("sweep", "spectrogram-cnn-cremad", *TINY, "--no-wandb", "--workers", "2", "--trials", "3",
                       "--set", "train.epochs=1", "--storage", str(journal), cwd=workspace, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    assert_every_trial_accounted_for(workspace, storage, 3)
