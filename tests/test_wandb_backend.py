"""The W&B backend offline: W&B's own sweep engine run locally, records like Optuna's."""

from __future__ import annotations

import json

import pytest

from avbench.catalog import load_experiment
from avbench.errors import AvbenchError
from avbench.results.records import iter_records
from avbench.sweep.space import resolve_space
from avbench.sweep.trial_loop import SweepHooks
from avbench.sweep.wandb_backend import SweepState, run_wandb_sweep
from tests.wandb_files import read_offline_run

TINY = ("--preset", "tiny", "--synthetic")
SWEEP = "mel-stats-mlp-cremad-tiny-synthetic-wandb"


def write_sweep(workspace, text: str):
    path = workspace / "sweeps" / "test.yaml"
    path.write_text(text)
    return str(path)


def test_grid_of_2x2_runs_exactly_4_trials_logged_offline(cli, workspace):
    sweep_file = write_sweep(
        workspace,
        """
method: grid
metric: {name: val/acc, goal: maximize}
parameters:
  train.lr: {values: [0.001, 0.01]}
  train.weight_decay: {values: [0.0, 0.01]}
  model_args.dropout: {value: 0.1}
""",
    )
    out = cli(
        "sweep", "mel-stats-mlp-cremad", *TINY, "--backend", "wandb", "--sweep-config", sweep_file, "--trials", "10"
    ).output
    assert "4 finished" in out
    records = [r for r in iter_records(workspace / "results") if r.sweep == SWEEP]
    assert len(records) == 4
    combos = {(r.searched["train.lr"], r.searched["train.weight_decay"]) for r in records}
    assert combos == {(0.001, 0.0), (0.001, 0.01), (0.01, 0.0), (0.01, 0.01)}
    runs = [read_offline_run(p) for p in (workspace / "results" / "wandb").glob("offline-run-*")]
    assert len(runs) == 4 and {r["run"]["group"] for r in runs} == {SWEEP}
    state = json.loads((workspace / "results" / "wandb-sweeps" / f"{SWEEP}.json").read_text())
    assert [run["status"] for run in state["runs"]] == ["completed"] * 4
    rows = json.loads(cli("leaderboard", "--format", "json").output)
    assert rows[0]["model"] == "mel-stats-mlp" and rows[0]["n_trials"] == 4


def test_bayes_with_hyperband_terminates_some_runs_early(cli, workspace):
    sweep_file = write_sweep(
        workspace,
        """
method: bayes
metric: {name: val/acc, goal: maximize}
parameters:
  train.lr: {distribution: log_uniform_values, min: 1.0e-6, max: 3.0e-2}
  train.weight_decay: {value: 0.0}
  model_args.dropout: {value: 0.0}
early_terminate: {type: hyperband, min_iter: 1, eta: 2}
""",
    )
    cli(
        "sweep",
        "mel-stats-mlp-cremad",
        *TINY,
        "--backend",
        "wandb",
        "--sweep-config",
        sweep_file,
        "--trials",
        "6",
        "--no-wandb",
        "--set",
        "train.epochs=4",
    )
    records = [r for r in iter_records(workspace / "results") if r.sweep == SWEEP]
    assert len(records) == 6
    pruned = [r for r in records if r.status == "pruned"]
    assert pruned and all(r.epochs_run < 4 for r in pruned)
    assert any(r.status == "completed" and r.epochs_run == 4 for r in records)


def test_an_interrupted_wandb_sweep_resumes_the_running_trial(workspace):
    loaded = load_experiment("mel-stats-mlp-cremad", preset="tiny", overrides=["train.epochs=3"])
    space = resolve_space(loaded)
    calls = {"n": 0}

    def interrupt_second_trial(epoch, metrics):
        calls["n"] += 1
        if calls["n"] == 5:  # trial 0 has 3 epochs; this is epoch 2 of trial 1
            raise KeyboardInterrupt

    kwargs = {"results": workspace / "results", "synthetic": True, "use_wandb": False, "preset": "tiny"}
    with pytest.raises(KeyboardInterrupt):
        run_wandb_sweep(loaded, space, trials=3, hooks=SweepHooks(epoch=interrupt_second_trial), **kwargs)
    outcome = run_wandb_sweep(loaded, space, trials=3, **kwargs)
    assert outcome.finished == 3
    records = {r.trial: r for r in iter_records(workspace / "results") if r.sweep == SWEEP}
    assert sorted(records) == [0, 1, 2]
    assert records[1].resumed_from_epoch >= 1 and records[1].status in ("completed", "pruned")


def test_one_sweep_is_driven_by_one_process(workspace):
    path = workspace / "results" / "wandb-sweeps" / "x.json"
    first = SweepState(path, {}, "abc")
    try:
        with pytest.raises(AvbenchError, match="another process"):
            SweepState(path, {}, "abc")
    finally:
        first.close()
