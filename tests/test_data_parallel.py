"""Many processes per trial: real `torchrun --nproc_per_node 2` launches on CPU (gloo).

Rank 0 takes each trial's parameters from the study and broadcasts them; every rank trains
with them (each writes rank-<i>.json: its searched values and its config's hash); validation
and test metrics are gathered over both ranks without duplicated samples; rank 0 alone writes
records and talks to the storage; ranks stop together, on a NaN loss too; a failure on one rank
ends the launch instead of hanging it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from tests.conftest import REPO, TINY

pytestmark = pytest.mark.heavy  # minutes of sweeps: scheduled first (tests/conftest.py)

EXPERIMENT = "mel-stats-mlp-cremad"
STUDY = "mel-stats-mlp-cremad-tiny-synthetic"
# Batches of 5 split unevenly over 2 ranks, so Accelerate pads the last one with repeated
# samples: the record's counts show whether gather_for_metrics dropped them again.
UNEVEN = ("--set", "train.batch_size=5", "--set", "train.epochs=2")


def torchrun(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    result.output = result.stdout + result.stderr
    return result


def assert_one_run_on_two_ranks(run: Path) -> dict:
    """The record of a run trained by two ranks with the same config, counting each val and
    test sample once, written once; returns it."""
    record = json.loads((run / "record.json").read_text())
    ranks = [json.loads((run / f"rank-{i}.json").read_text()) for i in (0, 1)]
    assert record["processes"] == 2 and [r["rank"] for r in ranks] == [0, 1]
    for key in ("searched", "config_sha256", "epochs_run", "status", "val", "test"):
        assert ranks[0][key] == ranks[1][key], key
    assert ranks[0]["searched"] == record["searched"] and ranks[0]["epochs_run"] == record["epochs_run"]
    for split in ("val", "test"):
        assert sum(map(sum, record[split]["confusion"])) == record["data_sizes"][split], split
    assert len((run / "metrics.jsonl").read_text().splitlines()) == record["epochs_run"]
    return record


def test_torchrun_sweep_trains_each_trial_on_both_ranks_with_rank_0s_parameters(workspace):
    result = torchrun(
        "-m", "avbench", "sweep", EXPERIMENT, *TINY, "--trials", "2", "--no-wandb", *UNEVEN, cwd=workspace
    )
    assert result.returncode == 0, result.output
    assert result.stdout.count("2 finished, 0 failed") == 1  # rank 0 alone reports
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{workspace}/results/studies/{EXPERIMENT}.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    runs = sorted((workspace / "results" / "runs" / EXPERIMENT).iterdir())
    assert [run.name for run in runs] == sorted(t.user_attrs["run_id"] for t in study.trials)
    for trial, run in zip(sorted(study.trials, key=lambda t: t.user_attrs["run_id"]), runs, strict=True):
        record = assert_one_run_on_two_ranks(run)
        assert record["searched"] == trial.params and record["sweep"] == STUDY and record["epochs_run"] == 2


def test_torchrun_run_writes_one_record_from_both_ranks(workspace):
    values = ("--set", "train.lr=0.003", "--set", "train.weight_decay=0", "--set", "model_args.dropout=0")
    result = torchrun("-m", "avbench", "run", EXPERIMENT, *TINY, *values, *UNEVEN, "--no-wandb", cwd=workspace)
    assert result.returncode == 0, result.output
    assert result.stdout.count("record: ") == 1
    (run,) = (workspace / "results" / "runs" / EXPERIMENT).iterdir()  # one run id, agreed by both ranks
    assert assert_one_run_on_two_ranks(run)["status"] == "completed"


def test_torchrun_trains_a_model_whose_layerdrop_skips_parameters(workspace):
    """wav2vec2's layerdrop leaves a skipped layer without gradients; DDP refuses that in the
    next step unless it looks for unused parameters, which the registry's skips_parameters
    asks for."""
    values = (
        "--set",
        "model_args.num_layers=3",
        "--set",
        "model_args.layerdrop=0.7",
        "--set",
        "train.lr=0.001",
        "--set",
        "train.batch_size=8",
        "--set",
        "train.epochs=1",
    )
    result = torchrun("-m", "avbench", "run", "wav2vec2-cremad", *TINY, *values, "--no-wandb", cwd=workspace)
    assert result.returncode == 0, result.output
    (run,) = (workspace / "results" / "runs" / "wav2vec2-cremad").iterdir()
    record = assert_one_run_on_two_ranks(run)
    assert record["status"] == "completed", record.get("error")


PROBE_EXPERIMENT = """\
task: cremad
model: rank-probe
data: {clip_seconds: 1.0, n_mels: 32, synth_size: tiny}
model_args: {failure: null}
train: {epochs: 3, batch_size: 16, lr: 0.01, optimizer: adam, patience: 0}
"""


def test_ranks_stop_together_and_a_failure_on_one_rank_ends_the_launch(workspace):
    """tests/ranks_probe.py: a NaN loss (on every rank) fails the run on both ranks and the
    launch goes on; rank 0's decision to stop after epoch 1 stops both; an exception on rank 1
    alone stops the whole launch with its reason instead of leaving rank 0 waiting."""
    (workspace / "probe.yaml").write_text(PROBE_EXPERIMENT)
    result = torchrun(str(REPO / "tests" / "ranks_probe.py"), "probe.yaml", "results", cwd=workspace)
    assert result.returncode != 0
    seen = [
        [json.loads(line) for line in (workspace / "results" / f"probe-rank-{i}.jsonl").read_text().splitlines()]
        for i in (0, 1)
    ]
    nan, stopped = seen[0][0], seen[0][1]
    assert nan["status"] == "failed" and "NonFiniteLoss: training loss became nan" in nan["error"]
    assert stopped["status"] == "pruned" and stopped["epochs_run"] == 1
    assert seen[1][:2] == seen[0][:2]  # same run ids, same outcomes
    assert "rank 1 of 2: ValueError: probe failure on rank 1 only" in seen[1][2]["raised"]


def test_workers_or_dry_run_under_a_launcher_are_refused_in_one_line(cli, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun sets for each of its processes
    for flag, reason in (("--workers=2", "drop --workers"), ("--dry-run", "runs in one process")):
        out = cli("sweep", EXPERIMENT, *TINY, flag, expect=1).output
        assert reason in out and len(out.strip().splitlines()) == 1
