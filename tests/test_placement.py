"""GPU placement of `--workers`: which CUDA_VISIBLE_DEVICES each worker gets, checked here
without GPUs through --allow-fake-gpus (the ids are assigned as on a GPU machine, the workers
train on CPU), and the one-line refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from avbench.errors import ConfigError
from avbench.sweep.launch.placement import plan_placement
from tests.conftest import AVBENCH, REPO, TINY

pytestmark = pytest.mark.heavy  # minutes of sweeps: scheduled first (tests/conftest.py)

EXPERIMENT = "mel-stats-mlp-cremad"
STUDY = "mel-stats-mlp-cremad-tiny-synthetic"


def place(monkeypatch, visible: str | None = None, *, cuda: bool = True, **asked):
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    options = {"workers": None, "gpus": None, "gpus_per_trial": None, "trials_per_gpu": None, "allow_fake_gpus": False}
    return plan_placement(**{**options, **asked}, cuda=cuda)


def test_one_worker_per_visible_gpu_honouring_an_inherited_cuda_visible_devices(monkeypatch):
    assert place(monkeypatch, "4,5,6").slots == (("4",), ("5",), ("6",))
    assert place(monkeypatch, "4,5,6", gpus="6,4").slots == (("6",), ("4",))


def test_gpus_per_trial_groups_and_trials_per_gpu_spread_before_sharing(monkeypatch):
    grouped = place(monkeypatch, "0,1,2,3", gpus_per_trial=2)
    assert grouped.slots == (("0", "1"), ("2", "3")) and grouped.per_trial == 2
    shared = place(monkeypatch, "0,1", trials_per_gpu=2)
    assert shared.slots == (("0",), ("1",), ("0",), ("1",))
    assert place(monkeypatch, "0,1", trials_per_gpu=2, workers=2).slots == (("0",), ("1",))
    assert shared.env(2) == {"CUDA_VISIBLE_DEVICES": "0"}


def test_fake_gpus_are_assigned_as_asked_and_a_cpu_sweep_has_no_placement(monkeypatch):
    fake = place(monkeypatch, cuda=False, gpus="0,1,2,3", allow_fake_gpus=True)
    assert fake.fake and fake.slots == (("0",), ("1",), ("2",), ("3",))
    assert place(monkeypatch, cuda=False, workers=3) is None


@pytest.mark.parametrize(
    ("visible", "cuda", "asked", "reason"),
    [
        ("0,1", True, {"gpus": "0,1,2"}, "3 GPU(s) asked for, 2 visible"),
        ("0,1", True, {"gpus": "1,7"}, "GPU 7 not visible"),
        ("0,1,2", True, {"gpus_per_trial": 2}, "--gpus-per-trial 2 does not divide the 3 GPU(s)"),
        ("0,1", True, {"workers": 3}, "--workers 3 on 2 GPU slot(s)"),
        (None, False, {"gpus": "0"}, "--gpus on a machine without CUDA"),
        (None, False, {"gpus_per_trial": 2}, "without a GPU"),
    ],
)
def test_impossible_placements_are_refused(monkeypatch, visible, cuda, asked, reason):
    with pytest.raises(ConfigError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        place(monkeypatch, visible, cuda=cuda, **asked)


def test_the_cli_refuses_gpus_without_cuda_in_one_line(cli, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr("avbench.sweep.launch.placement.cuda_available", lambda: False)  # a CPU machine
    out = cli("sweep", EXPERIMENT, *TINY, "--no-wandb", "--gpus", "0,1", expect=1).output
    assert "--allow-fake-gpus" in out and len(out.strip().splitlines()) == 1


def fake_gpu_sweep(workspace: Path, *args: str) -> tuple[str, list[dict], list]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    command = [*AVBENCH, "sweep", EXPERIMENT, *TINY, "--no-wandb", "--trials", "2", "--set", "train.epochs=1"]
    result = subprocess.run(
        [*command, "--allow-fake-gpus", *args], cwd=workspace, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    runs = sorted((workspace / "results" / "runs" / EXPERIMENT).iterdir())
    records = [json.loads((run / "record.json").read_text()) for run in runs]
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{workspace}/results/studies/{EXPERIMENT}.db")
    return result.stdout, records, study.trials


def test_each_worker_trains_on_its_own_fake_gpu(workspace):
    out, records, trials = fake_gpu_sweep(workspace, "--gpus", "0,1")
    assert "worker 0: GPU 0, worker 1: GPU 1" in out and "2 finished, 0 failed" in out
    where = {t.user_attrs["run_id"]: t.user_attrs["devices"] for t in trials}
    for record in records:
        assert record["status"] == "completed" and record["processes"] == 1
        assert record["devices"]["visible"] in (["0"], ["1"])
        assert record["devices"]["visible"] == [where[record["run_id"]]]
        assert f"on GPU {where[record['run_id']]}" in out


def test_gpus_per_trial_2_trains_each_trial_on_2_gloo_processes(workspace):
    out, records, _ = fake_gpu_sweep(workspace, "--gpus", "0,1", "--gpus-per-trial", "2")
    assert "worker 0: GPU 0,1" in out and "2 finished, 0 failed" in out
    assert len(records) == 2
    for record in records:
        assert record["status"] == "completed" and record["processes"] == 2
        assert record["devices"]["visible"] == ["0", "1"]


def study_trials(workspace: Path) -> list:
    """The sweep's trials so far ([] before the workers have created the study)."""
    path = workspace / "results" / "studies" / f"{EXPERIMENT}.db"
    if not path.exists():
        return []
    try:
        return optuna.load_study(study_name=STUDY, storage=f"sqlite:///{path}").trials
    except (KeyError, ValueError, RuntimeError, optuna.exceptions.StorageInternalError):
        return []


def worker_pid(trial) -> int:
    return int(trial.user_attrs.get("worker", ":0").rsplit(":", 1)[1])  # 0: not claimed yet


def wait_for(condition, timeout: float, sweep: subprocess.Popen):
    """condition()'s first true value, polled while the sweep runs; None after `timeout` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert sweep.poll() is None, sweep.communicate()[0][-3000:]
        if found := condition():
            return found
        time.sleep(0.05)
    return None


def test_a_killed_worker_is_restarted_on_its_own_devices(workspace):
    """SIGKILL one of two fake-GPU workers mid-trial: the worker started in its place trains on
    the same CUDA_VISIBLE_DEVICES (in its trials' attributes and its runs' records). The other
    worker is paused meanwhile (for less than the heartbeat grace period), so that the
    restarted one claims a trial before the other takes them all. Sixty tiny epochs a trial:
    with fewer the whole sweep can end between two looks at the study."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    args = ["--trials", "4", "--set", "train.epochs=60", "--pruner", "none", "--gpus", "0,1", "--allow-fake-gpus"]
    sweep = subprocess.Popen(
        [*AVBENCH, "sweep", EXPERIMENT, *TINY, "--no-wandb", *args],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        both = wait_for(
            # Both claimed (the worker attribute is set just after the claim): a pid of 0 would
            # signal this test's own process group.
            lambda: (
                (r := [t for t in study_trials(workspace) if t.state.name == "RUNNING" and worker_pid(t) > 0])[1:] and r
            ),
            240,
            sweep,
        )
        assert both, "the two workers never trained at once"
        victim, other = both
        first_pids = {worker_pid(victim), worker_pid(other)}
        os.kill(worker_pid(other), signal.SIGSTOP)
        try:
            os.kill(worker_pid(victim), signal.SIGKILL)
            wait_for(lambda: any(worker_pid(t) not in first_pids for t in study_trials(workspace)), 15, sweep)
        finally:
            os.kill(worker_pid(other), signal.SIGCONT)
        out = sweep.communicate(timeout=300)[0]
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, out[-3000:]
    assert "was killed (signal 9); restarting it" in out and "4 finished" in out
    restarted = [t for t in study_trials(workspace) if worker_pid(t) not in first_pids]
    assert restarted, "the restarted worker claimed no trial"
    assert victim.user_attrs["devices"] != other.user_attrs["devices"]
    records = [json.loads(path.read_text()) for path in workspace.glob("results/runs/*/*/record.json")]
    by_run = {record["run_id"]: record for record in records}
    for trial in restarted:
        assert trial.user_attrs["devices"] == victim.user_attrs["devices"]
        record = by_run[trial.user_attrs["run_id"]]
        assert record["status"] == "completed" and record["devices"]["visible"] == [victim.user_attrs["devices"]]
