"""GPU placement of `--workers`: which CUDA_VISIBLE_DEVICES each worker gets, checked here
without GPUs through --allow-fake-gpus (the ids are assigned as on a GPU machine, the workers
train on CPU), and the one-line refusals."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import optuna
import pytest

from avbench.errors import ConfigError
from avbench.sweep.launch.placement import plan_placement
from tests.conftest import AVBENCH, REPO, TINY

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
