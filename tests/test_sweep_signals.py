"""Signals and the machine's faults in a sweep: SIGTERM is Ctrl-C in every process (the trial
is recorded as interrupted and re-queued, exit 143), and `--workers` never gives up a worker
that was killed by a signal however often it happens."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import optuna

from avbench.results.records import iter_records
from tests.conftest import AVBENCH, REPO, TINY, run_avbench

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
