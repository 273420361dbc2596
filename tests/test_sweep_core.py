"""The backend-neutral trial core: a backend in one file (tests/fake_backend.py) plugged in by
one table entry trains real tiny trials through the same core as Optuna and W&B, and the
core and each backend import no other engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from avbench.results.records import iter_records
from avbench.sweep.backends import BACKENDS
from tests import fake_backend
from tests.conftest import REPO

VIT = "spectrogram-vit-cremad"
# A 32 x 64 image: patch 8 gives 32 patches, patch 64 does not divide it (infeasible).
FEASIBLE = {
    "model_args.patch_size": 8,
    "model_args.heads": 2,
    "model_args.depth": 1,
    "model_args.dim": 32,
    "model_args.mlp_dim": 64,
    "train.batch_size": 32,
    "train.lr": 0.001,
}
SETS = ("--set", "model_args.spectrogram_size=[32, 64]", "--set", "model_args.head_dim=0")


@pytest.fixture
def fixed_backend(monkeypatch):
    monkeypatch.setitem(BACKENDS, "fixed", "tests.fake_backend")
    monkeypatch.setattr(fake_backend, "TOLD", [])
    return fake_backend


def test_a_new_backend_is_one_file_and_one_table_entry(cli, workspace, fixed_backend, monkeypatch):
    suggestions = [{**FEASIBLE, "model_args.patch_size": 64}, FEASIBLE, {**FEASIBLE, "train.lr": 0.003}]
    monkeypatch.setattr(fixed_backend, "SUGGESTIONS", suggestions)
    monkeypatch.setattr(fixed_backend, "PRUNE_AT", {2: 1})  # the engine stops trial 2 after epoch 1
    args = ("sweep", VIT, "--preset", "tiny", "--synthetic", "--no-wandb", *SETS, "--trials", "2")
    out = cli(*args, "--backend", "fixed").output
    sweep = f"{VIT}-tiny-synthetic-fixed"
    assert f"study {sweep}: 2 finished, 0 failed, 1 infeasible (skipped untrained) (memory)" in out

    told = fixed_backend.TOLD
    assert told[0][:2] == ("reject", 0) and "not divisible by patch_size 64" in told[0][2]
    records = {r.trial: r for r in iter_records(workspace / "results") if r.sweep == sweep}
    assert sorted(records) == [1, 2]  # the rejected suggestion left no record
    assert records[1].searched == FEASIBLE and records[1].status == "completed" and records[1].epochs_run == 2
    assert records[2].status == "pruned" and records[2].epochs_run == 1
    for number, record in records.items():
        # Every epoch's val/acc reached the engine, and the final value is the record's.
        metrics = (workspace / "results" / "runs" / VIT / record.run_id / "metrics.jsonl").read_text()
        epochs = [json.loads(line)["val/acc"] for line in metrics.splitlines()]
        assert [t[3] for t in told if t[:2] == ("report", number)] == epochs
        assert ("finish", number, record.status, (record.val["acc"],)) in told  # one objective: a 1-tuple
    assert f"best val/acc={records[1].val['acc']:.4f}" in out and records[1].run_id in out


def test_a_user_error_fails_the_trial_and_stops_the_sweep_with_one_line(cli, workspace, fixed_backend, monkeypatch):
    monkeypatch.setattr(fixed_backend, "SUGGESTIONS", [{**FEASIBLE, "train.batch_size": "many"}])
    args = ("sweep", VIT, "--preset", "tiny", "--synthetic", "--no-wandb", *SETS, "--backend", "fixed")
    out = cli(*args, expect=1).output
    error = [line for line in out.splitlines() if line.startswith("Error: ")]
    assert len(error) == 1 and "'train.batch_size': Input should be a valid integer" in error[0]
    assert "Traceback" not in out
    assert [t[:2] for t in fixed_backend.TOLD] == [("fail", 0)]


@pytest.mark.parametrize(
    "args, error",
    [
        (("--backend", "optima"), "unknown backend 'optima' (did you mean 'optuna'?)"),
        (("--backend", "wandb", "--workers", "2"), "--workers 2: --backend wandb trains one trial at a time here"),
        (("--backend", "wandb-online"), "--backend wandb-online needs a W&B login"),
    ],
)
def test_a_backend_that_cannot_do_what_was_asked_is_one_line(cli, args, error):
    out = cli("sweep", "mel-stats-mlp-cremad", "--preset", "tiny", "--synthetic", *args, expect=1).output
    assert len(out.strip().splitlines()) == 1 and out.startswith(f"Error: {error}")
    assert not (Path.cwd() / "results").exists()  # refused before anything ran


def test_the_core_and_each_backend_import_no_other_engine():
    probe = """
import sys
def engines():
    return sorted(m for m in ("optuna", "wandb", "sweeps", "torch") if m in sys.modules)
import avbench.sweep, avbench.sweep.core, avbench.sweep.backends
print(engines())
import avbench.sweep.backends.wandb_local, avbench.sweep.backends.wandb_online
print(engines())
import avbench.sweep.backends.optuna
print(engines())
"""
    lines = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert lines == ["[]", "[]", "['optuna']"]
