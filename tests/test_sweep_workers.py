"""Sweeps that scale and survive: several workers on SQLite, PostgreSQL and a journal file,
`--trials N` held exactly, workers killed with SIGKILL again and again, and every killed trial
resumed from its checkpoint by whichever worker comes next. Then what a user sees of such a
study: `avbench show` (best trials, states, importances, PNG plots) and optuna-dashboard."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from avbench.results.records import iter_records
from tests.conftest import AVBENCH, REPO, TINY, run_avbench
from tests.postgres import PostgresUnavailable, free_port, postgres_server

pytestmark = pytest.mark.heavy  # minutes of sweeps: scheduled first (tests/conftest.py)

STUDY = "spectrogram-cnn-cremad-tiny-synthetic"
RUNS = Path("results/runs/spectrogram-cnn-cremad")


def sqlite_url(workspace: Path) -> str:
    return f"sqlite:///{(workspace / 'results' / 'studies' / 'spectrogram-cnn-cremad.db').resolve()}"


def start_sweep(workspace: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [*AVBENCH, "sweep", "spectrogram-cnn-cremad", *TINY, "--no-wandb", *args],
        cwd=workspace,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


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
    by_state = {
        state: [t for t in study.trials if t.state.name == state]
        for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
    }
    finished = by_state["COMPLETE"] + by_state["PRUNED"]
    assert len(finished) == trials and not by_state["RUNNING"] and not by_state["WAITING"]
    records = {r.run_id: r for r in iter_records(workspace / "results") if r.sweep == STUDY}
    run_ids = [t.user_attrs["run_id"] for t in finished]
    assert len(set(run_ids)) == trials  # none counted twice
    assert {r for r, rec in records.items() if rec.status in ("completed", "pruned")} == set(run_ids)  # none lost
    for run_id in run_ids:
        epochs = [
            json.loads(line)["epoch"] for line in (workspace / RUNS / run_id / "metrics.jsonl").read_text().splitlines()
        ]
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


@pytest.fixture(scope="module")
def killed_sqlite_sweep(tmp_path_factory, synthetic_data) -> SimpleNamespace:
    """One sweep for the tests below: 4 workers, 8 trials on the default SQLite storage, one
    worker killed with SIGKILL once a trial has checkpointed its first epoch (three epochs a
    trial: on a quiet machine a tiny epoch is shorter than one look at the study)."""
    workspace = tmp_path_factory.mktemp("four-workers")
    env = {"AVBENCH_RESULTS": str(workspace / "results"), "AVBENCH_DATA": str(synthetic_data), "WANDB_MODE": "offline"}
    proc = start_sweep(
        workspace, "--workers", "4", "--trials", "8", "--set", "train.epochs=3", "--pruner", "none", env=env
    )
    storage = sqlite_url(workspace)
    deadline = time.time() + 400
    victim, study = None, None
    while victim is None:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.time() < deadline, "no trial ever checkpointed an epoch"
        for run in sorted((workspace / RUNS).glob("t*")) if (workspace / RUNS).exists() else []:
            if 1 <= epochs_done(run) < 3:
                study = study or optuna.load_study(study_name=STUDY, storage=storage)
                running = [
                    t
                    for t in study.get_trials(deepcopy=False)
                    if t.state.name == "RUNNING" and t.user_attrs.get("run_id") == run.name
                ]
                if running:
                    victim = running[0]
                    os.kill(int(victim.user_attrs["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
                    break
        time.sleep(0.05)
    output = proc.communicate(timeout=500)[0]
    return SimpleNamespace(
        workspace=workspace, env=env, storage=storage, victim=victim, output=output, returncode=proc.returncode
    )


def test_four_workers_on_sqlite_hold_the_trial_count_when_one_is_killed(killed_sqlite_sweep):
    sweep = killed_sqlite_sweep
    assert sweep.returncode == 0, sweep.output[-3000:]
    assert "restarting it" in sweep.output and "8 finished" in sweep.output
    assert "features ready in the cache for every worker" in sweep.output
    trials = assert_every_trial_accounted_for(sweep.workspace, sweep.storage, 8)
    assert len({t.user_attrs["worker"] for t in trials}) >= 3  # the work was shared (the restart is a new pid)
    records = [r for r in iter_records(sweep.workspace / "results") if r.sweep == STUDY]
    # Decoded once for all workers: by the parent while they start, or (under the build lock) by
    # the one worker that got there first while the others waited and found it cached.
    assert sum(r.cache["misses"] > 0 for r in records) <= 1
    resumed = next(r for r in records if r.run_id == sweep.victim.user_attrs["run_id"])
    assert resumed.status in ("completed", "pruned") and resumed.resumed_from_epoch >= 1
    logs = "".join(p.read_text() for p in (sweep.workspace / "results" / "studies" / STUDY).glob("worker-*.log"))
    assert "database is locked" not in logs and "Traceback" not in logs


SHOW_WITHOUT_TORCH = """
import sys
from click.testing import CliRunner
from avbench.cli import cli
result = CliRunner().invoke(cli, ["show", "spectrogram-cnn-cremad", "--no-plots"])
print(result.exit_code, [m for m in ("torch", "timm", "accelerate", "wandb") if m in sys.modules])
"""
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_show_reports_best_trials_states_failures_importances_and_plots(killed_sqlite_sweep):
    sweep = killed_sqlite_sweep
    shown = run_avbench("show", "spectrogram-cnn-cremad", "--top", "2", cwd=sweep.workspace, env=sweep.env)
    out = shown.stdout
    assert shown.returncode == 0, shown.stderr
    assert f"study {STUDY}" in out and "8 complete, 1 fail" in out
    records = sorted(
        (r for r in iter_records(sweep.workspace / "results") if r.sweep == STUDY),
        key=lambda r: (r.val["acc"], -r.trial),
        reverse=True,
    )
    assert records[0].run_id in out and f"{records[0].test['acc']:.4f}" in out  # test metrics from the run record
    assert records[2].run_id not in out  # --top 2
    assert f"trial {sweep.victim.number} failed: its worker died; retried as trial " in out
    assert "parameter importances (PED-ANOVA" in out and all(p in out for p in ("train.lr", "train.batch_size"))
    plots = [Path(line.split("plot: ", 1)[1].strip()) for line in out.splitlines() if line.startswith("plot: ")]
    assert sorted(p.name for p in plots) == [
        "optimization_history.png",
        "parallel_coordinate.png",
        "param_importances.png",
    ]
    for plot in plots:
        assert plot.parent == sweep.workspace / "results" / "studies" / STUDY
        data = plot.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, plot
    light = subprocess.run(
        [sys.executable, "-c", SHOW_WITHOUT_TORCH],
        cwd=sweep.workspace,
        capture_output=True,
        text=True,
        env={**os.environ, **sweep.env, "PYTHONPATH": str(REPO)},
    )
    assert light.stdout.split() == ["0", "[]"], light.stdout + light.stderr  # a report starts without torch
    wrong = run_avbench("show", "spectrogram-cnn-cremad", "--study", STUDY[:-2], cwd=sweep.workspace, env=sweep.env)
    assert wrong.returncode == 1 and f"did you mean '{STUDY}'" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1


def dashboard_command() -> str:
    beside_python = Path(sys.executable).parent / "optuna-dashboard"
    found = str(beside_python) if beside_python.exists() else shutil.which("optuna-dashboard")
    assert found, "optuna-dashboard is not installed (pip install -e '.[test]')"
    return found


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_optuna_dashboard_opens_the_storage(killed_sqlite_sweep):
    port = free_port()
    server = subprocess.Popen(
        [dashboard_command(), killed_sqlite_sweep.storage, "--host", "127.0.0.1", "--port", str(port), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while True:
            assert server.poll() is None, server.stderr.read()
            try:
                studies = get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
                break
            except OSError:
                assert time.time() < deadline, "optuna-dashboard never answered"
                time.sleep(0.3)
        ours = next(s for s in studies if s["study_name"] == STUDY)
        trials = get_json(f"http://127.0.0.1:{port}/api/studies/{ours['study_id']}")["trials"]
        assert sorted(t["state"] for t in trials) == ["Complete"] * 8 + ["Fail"]
    finally:
        server.terminate()
        server.wait(timeout=30)


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
    done = run_avbench(
        "sweep",
        "spectrogram-cnn-cremad",
        *TINY,
        "--no-wandb",
        "--workers",
        "4",
        "--trials",
        "8",
        "--set",
        "train.epochs=1",
        "--storage",
        postgres_url,
        cwd=workspace,
        timeout=500,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "8 finished, 0 failed" in done.stdout
    storage = postgres_url.replace("postgresql://", "postgresql+psycopg2://")
    assert_every_trial_accounted_for(workspace, storage, 8)
    # A fifth worker joining the finished study from "another machine" finds nothing to do.
    again = run_avbench(
        "sweep",
        "spectrogram-cnn-cremad",
        *TINY,
        "--no-wandb",
        "--trials",
        "8",
        "--set",
        "train.epochs=1",
        "--storage",
        postgres_url,
        "--study",
        STUDY,
        cwd=workspace,
        timeout=300,
    )
    assert again.returncode == 0 and "8 finished" in again.stdout
    assert_every_trial_accounted_for(workspace, storage, 8)


def test_two_workers_on_a_journal_file(workspace):
    journal = workspace / "shared" / "study.log"
    done = run_avbench(
        "sweep",
        "spectrogram-cnn-cremad",
        *TINY,
        "--no-wandb",
        "--workers",
        "2",
        "--trials",
        "2",
        "--set",
        "train.epochs=1",
        "--storage",
        str(journal),
        cwd=workspace,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    assert_every_trial_accounted_for(workspace, storage, 2)
