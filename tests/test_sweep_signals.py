"""Signals and the machine's faults in a sweep: SIGTERM is Ctrl-C in every process (the trial
is recorded as interrupted and re-queued, exit 143), and `--workers` never gives up a worker
that was killed by a signal however often it happens."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from rich.console import Console

from avbench.results.records import iter_records
from tests.conftest import AVBENCH, REPO, TINY, run_avbench

pytestmark = pytest.mark.heavy  # minutes of sweeps: scheduled first (tests/conftest.py)

STUDY = "spectrogram-cnn-cremad-tiny-synthetic"
RUNS = Path("results/runs/spectrogram-cnn-cremad")


def sqlite_url(workspace: Path) -> str:
    return f"sqlite:///{(workspace / 'results' / 'studies' / 'spectrogram-cnn-cremad.db').resolve()}"


def sweep_command(*args: str) -> list[str]:
    return [*AVBENCH, "sweep", "spectrogram-cnn-cremad", *TINY, "--no-wandb", "--pruner", "none", *args]


def wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, f"the sweep ended before {what}"
        assert time.time() < deadline, f"never: {what}"
        time.sleep(0.05)


def test_sigterm_of_a_one_process_sweep_interrupts_its_trial_which_the_next_run_resumes(workspace):
    args = ("--trials", "2", "--set", "train.epochs=3", "--threads", "1")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        sweep_command(*args), cwd=workspace, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    first = workspace / RUNS / f"t0000-{STUDY}"
    wait_for(lambda: (first / "last.pt").exists(), proc, "the first trial wrote an epoch checkpoint")
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "terminated (SIGTERM)" in stderr and "re-run the same command to resume" in stderr
    assert "Traceback" not in stderr
    (record,) = [r for r in iter_records(workspace / "results") if r.sweep == STUDY]
    assert record.status == "interrupted" and record.error == "interrupted by SIGTERM"
    states = [t.state.name for t in optuna.load_study(study_name=STUDY, storage=sqlite_url(workspace)).trials]
    assert states == ["FAIL", "WAITING"]  # given back: the same values wait for the next run

    done = run_avbench(*sweep_command(*args)[3:], cwd=workspace, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    records = {r.run_id: r for r in iter_records(workspace / "results") if r.sweep == STUDY}
    assert sorted(r.status for r in records.values()) == ["completed", "completed"]
    assert records[first.name].resumed_from_epoch >= 1


def epochs_done(run: Path) -> int:
    """Epochs a run has checkpointed: last.pt is written before the epoch's metrics line."""
    metrics = run / "metrics.jsonl"
    if not (run / "last.pt").exists() or not metrics.exists():
        return 0
    return len(metrics.read_text().splitlines())


def workers(parent: int) -> dict[int, int]:
    """{slot: pid} of a --workers parent's workers, each known by its log, worker-<slot>.log."""
    try:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    except OSError:
        return {}
    found = {}
    for pid in children:
        try:
            log = os.readlink(f"/proc/{pid}/fd/1")
        except OSError:
            continue
        if log.endswith(".log") and "worker-" in log:
            found[int(log.rsplit("worker-", 1)[1].removesuffix(".log"))] = int(pid)
    return found


def trial_of(study: optuna.Study, pid: int) -> str | None:
    """The run id of the trial the worker `pid` trains now, if any."""
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.user_attrs.get("worker", "").endswith(f":{pid}") and "run_id" in trial.user_attrs:
            return trial.user_attrs["run_id"]
    return None


def test_a_worker_killed_more_often_than_ever_before_is_restarted_until_the_sweep_completes(workspace):
    """kill -9 the workers of a --workers 2 sweep, each time one's trial checkpointed a new
    epoch, until one of them was killed four times (a worker was once given up after three
    restarts): the parent restarts each every time and the sweep completes every trial, each
    killed one resumed from its checkpoint (a trial too is retried after more than three kills)."""
    epochs = 6  # kill points: after epochs 1..4 of each trial (after the 5th the sweep may be ending)
    args = ("--trials", "3", "--set", f"train.epochs={epochs}", "--workers", "2", "--threads", "1")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        sweep_command(*args), cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    storage, killed, per_slot, deadline = sqlite_url(workspace), [], {0: 0, 1: 0}, time.time() + 500
    log = workspace / "results" / "studies" / STUDY / "worker-0.log"
    wait_for(log.exists, proc, "the workers started")  # after the parent created the study
    study = optuna.load_study(study_name=STUDY, storage=storage)
    while max(per_slot.values()) < 4 and proc.poll() is None:
        assert time.time() < deadline, f"only {len(killed)} kills"
        time.sleep(0.05)
        for slot, pid in workers(proc.pid).items():
            run_id = trial_of(study, pid)
            done = epochs_done(workspace / RUNS / run_id) if run_id else 0
            if 0 < done < epochs - 1 and (run_id, done) not in killed:
                os.kill(pid, signal.SIGKILL)
                killed.append((run_id, done))
                per_slot[slot] += 1
    output = proc.communicate(timeout=400)[0]
    assert max(per_slot.values()) == 4, f"the sweep ended after {per_slot} kills:\n{output[-2000:]}"
    assert proc.returncode == 0, output[-3000:]
    assert "(restart 4)" in output and "3 finished" in output
    study = optuna.load_study(study_name=STUDY, storage=storage)
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 3 and len({t.user_attrs["run_id"] for t in finished}) == 3
    assert sum(t.state.name == "FAIL" for t in study.trials) == len(killed)  # one given-up attempt per kill
    records = {r.run_id: r for r in iter_records(workspace / "results") if r.sweep == STUDY}
    for run_id, _ in killed:
        assert records[run_id].status == "completed" and records[run_id].resumed_from_epoch >= 1, run_id


def test_a_sweep_that_ends_short_of_its_trials_exits_non_zero_saying_how_to_resume(workspace):
    """An online W&B sweep whose agent ran its count with failures (or any backend that stops
    early) must not look done to the script that started it."""
    from avbench.cli.sweep import _report_sweep
    from avbench.context import RunContext
    from avbench.errors import AvbenchError
    from avbench.sweep.core import SweepOutcome

    outcome = SweepOutcome(
        "s", "sqlite:///s.db", target=5, finished=3, failed=2, best_value=None, best_params={}, best_run_id=None
    )
    console = io.StringIO()
    with pytest.raises(AvbenchError, match="study s: 3 of 5 trials finished; re-run the same command to resume"):
        _report_sweep(RunContext(workspace / "results"), outcome, Console(file=console))
    exhausted = SweepOutcome("g", "sqlite:///g.db", 4, 2, 2, None, {}, None, grid_exhausted=True)
    _report_sweep(RunContext(workspace / "results"), exhausted, Console(file=console))  # a grid has no more to try
