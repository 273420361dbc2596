"""Failures inside trials: exceptions, NaN loss and out of memory are recorded with their
reason and the sweep goes on; out of memory is first retried in the same trial with half the
micro-batch. Also: stale trials found by heartbeat on every storage, and seeded samplers.

The failures come from a test-only model registered here (never from production code): it
raises, returns NaN, or raises an out-of-memory error for batches above a threshold."""

from __future__ import annotations

import time

import optuna
import pytest
import torch
from torch import nn

from avbench.catalog import load_experiment
from avbench.context import RunContext, TrialInfo
from avbench.recipes import run_recipe
from avbench.registry import register_model
from avbench.results.records import iter_records
from avbench.spec import TaskSpec
from avbench.sweep import run
from avbench.sweep.backends.optuna import claim_trial, open_study
from avbench.sweep.core import SweepRequest
from avbench.sweep.liveness import recover_dead_trials
from avbench.sweep.space import resolve_space
from avbench.sweep.storage import open_storage

OOM_MESSAGES = {
    "torch": lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    "cpu": lambda: RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"),
}


class Probe(nn.Module):
    def __init__(self, spec: TaskSpec, failure: str, max_batch: int, oom_kind: str):
        super().__init__()
        channels, mels, frames = spec.shapes["audio"]
        self.head = nn.Linear(channels * mels, spec.num_classes)
        self.failure, self.max_batch, self.oom_kind = failure, max_batch, oom_kind
        self.batches_seen: list[int] = []

    def forward(self, batch: dict) -> torch.Tensor:
        size = len(batch["audio"])
        self.batches_seen.append(size)
        if self.failure == "raise":
            raise ValueError("probe failure: boom")
        if self.failure == "oom_always" or (self.failure == "oom" and size > self.max_batch):
            raise OOM_MESSAGES[self.oom_kind]()
        logits = self.head(batch["audio"].mean(dim=-1).flatten(1))
        return logits * float("nan") if self.failure == "nan" else logits


@register_model("fault-probe", tiny={}, modalities=("audio",))
def probe(spec: TaskSpec, failure: str = "none", max_batch: int = 8, oom_kind: str = "torch") -> nn.Module:
    """A linear model on time-averaged log-mels that fails on request."""
    return Probe(spec, failure, max_batch, oom_kind)


PROBE_EXPERIMENT = """\
task: cremad
model: fault-probe
data: {clip_seconds: 1.0, n_mels: 32, synth_size: tiny}
model_args: {failure: null, max_batch: 8}
train: {epochs: 2, batch_size: 16, lr: 0.01, optimizer: adam, patience: 0}
sweep: {trials: 4, pruner: none}
"""
PROBE_GRID = """\
method: grid
metric: {name: val/acc, goal: maximize}
parameters:
  model_args.failure: {values: [none, oom, raise, nan]}
"""


@pytest.fixture
def probe_workspace(workspace):
    (workspace / "experiments" / "fault-probe-cremad.yaml").write_text(PROBE_EXPERIMENT)
    (workspace / "sweeps" / "fault-probe-cremad.yaml").write_text(PROBE_GRID)
    return workspace


def test_failed_trials_are_recorded_with_their_reason_and_the_sweep_goes_on(cli, probe_workspace):
    out = cli("sweep", "fault-probe-cremad", "--synthetic", "--no-wandb").output
    assert "2 finished, 2 failed" in out
    records = {r.searched["model_args.failure"]: r for r in iter_records(probe_workspace / "results")}
    assert set(records) == {"none", "oom", "raise", "nan"}  # one trial per grid point, retries included
    assert records["none"].status == "completed" and records["none"].oom_retry is None
    assert records["oom"].status == "completed"
    assert records["oom"].oom_retry == "out of memory at batch_size 16 x grad_accum 1; retried at 8 x 2"
    assert records["raise"].status == "failed" and records["raise"].error == "ValueError: probe failure: boom"
    assert records["nan"].status == "failed" and "loss became nan" in records["nan"].error
    storage = f"sqlite:///{(probe_workspace / 'results' / 'studies' / 'fault-probe-cremad.db').resolve()}"
    trials = {
        t.params["model_args.failure"]: t
        for t in optuna.load_study(study_name="fault-probe-cremad-synthetic", storage=storage).trials
    }
    assert trials["raise"].state.name == "FAIL" and "boom" in trials["raise"].user_attrs["error"]
    assert trials["nan"].state.name == "FAIL" and "nan" in trials["nan"].user_attrs["error"]
    assert trials["oom"].state.name == "COMPLETE" and "retried at 8 x 2" in trials["oom"].user_attrs["oom_retry"]
    assert "trial 2" in out or "trial 3" in out  # every trial was reported as it ended


def probe_config(**values):
    loaded = load_experiment("fault-probe-cremad", overrides=[f"{k}={v}" for k, v in values.items()])
    return loaded.resolve({"model_args.failure": values.get("model_args.failure", "oom")})


@pytest.mark.parametrize("oom_kind", sorted(OOM_MESSAGES))
def test_out_of_memory_is_retried_once_with_half_the_micro_batch(probe_workspace, oom_kind):
    ctx = RunContext(probe_workspace / "results", synthetic=True, use_wandb=False)
    fits = run_recipe(probe_config(**{"model_args.oom_kind": oom_kind}), ctx)
    assert fits.status == "completed" and fits.oom_retry.endswith("retried at 8 x 2")
    never = run_recipe(probe_config(**{"model_args.oom_kind": oom_kind, "model_args.failure": "oom_always"}), ctx)
    assert never.status == "failed" and never.error.startswith("out of memory")
    assert never.error.endswith("(also after halving the micro-batch)") and never.oom_retry is not None
    single = run_recipe(
        probe_config(**{"model_args.oom_kind": oom_kind, "model_args.failure": "oom_always", "train.batch_size": 1}),
        ctx,
    )
    assert single.status == "failed" and single.oom_retry is None  # no smaller micro-batch to try


def test_other_runtime_errors_are_not_mistaken_for_out_of_memory():
    from avbench.train.failures import is_out_of_memory

    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_out_of_memory(ValueError("out of memory"))  # only RuntimeErrors carry it in the message
    assert all(is_out_of_memory(make()) for make in OOM_MESSAGES.values())


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_trial_whose_heartbeat_stopped_is_failed_and_requeued_by_any_worker(probe_workspace, kind):
    """A worker on a lost machine: its trial stops beating; another worker (here with a
    2-second grace period) fails it and re-enqueues its parameters and run_id."""
    loaded = load_experiment("fault-probe-cremad")
    space = resolve_space(loaded)
    studies = (probe_workspace / "results" / "studies").resolve()
    url = f"sqlite:///{studies / 's.db'}" if kind == "sqlite" else f"journal://{studies / 's.log'}"
    ctx = RunContext(probe_workspace / "results")
    handle = open_study(loaded, space, ctx, trials=4, storage_url=url, study="hb")
    short = optuna.load_study(study_name="hb", storage=open_storage(handle.url, heartbeat_interval=1, grace_period=2))
    handle.study = short
    lost = claim_trial(handle, space)
    lost.suggest_categorical("model_args.failure", ["none", "oom", "raise", "nan"])
    lost.set_user_attr("worker", "a-lost-machine:4242")
    lost.set_user_attr("run_id", "t0000-hb")
    recover_dead_trials(short)
    assert short.trials[0].state.name == "RUNNING"  # still within its grace period
    time.sleep(3.5)  # SQLite's clock, which stamps heartbeats, counts whole seconds
    recover_dead_trials(short)
    trials = short.trials
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert trials[1].params == trials[0].params and trials[1].user_attrs["run_id"] == "t0000-hb"
    retry = claim_trial(handle, space)  # the next claim takes the re-enqueued trial first
    assert retry.number == 1 and retry.user_attrs["run_id"] == "t0000-hb"


SEEDED_SPACE = """\
method: bayes
metric: {name: val/acc, goal: maximize}
parameters:
  train.lr: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-1}
  train.weight_decay: {distribution: log_uniform_values, min: 1.0e-6, max: 1.0e-2}
  train.optimizer: {values: [adam, adamw]}
"""


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes"])
def test_the_same_seed_gives_the_same_suggestions(probe_workspace, sampler):
    (probe_workspace / "sweeps" / "seeded.yaml").write_text(SEEDED_SPACE)

    def suggestions(study: str, seed: int) -> list[dict]:
        overrides = (
            "model_args.failure=none",
            "train.lr=null",
            "train.weight_decay=null",
            "train.optimizer=null",
            "train.epochs=1",
            f"sweep.seed={seed}",
        )
        seeded = probe_workspace / "sweeps" / "seeded.yaml"
        request = SweepRequest(
            "fault-probe-cremad", overrides, trials=2, sweep_config=seeded, study=study, sampler=sampler
        )
        run(request, RunContext(probe_workspace / "results", synthetic=True, use_wandb=False))
        storage = f"sqlite:///{(probe_workspace / 'results' / 'studies' / 'fault-probe-cremad.db').resolve()}"
        trials = optuna.load_study(study_name=study, storage=storage).trials
        if sampler == "cmaes":  # CMA-ES, not its fallback, drew the numeric parameters after the first trial
            assert all(any(k.startswith("cma:") for k in t.system_attrs) for t in trials[1:])
        return [t.params for t in trials]

    first, again, other = suggestions("a", 7), suggestions("b", 7), suggestions("c", 8)
    assert first == again
    assert first != other
    assert len({p["train.lr"] for p in first}) == 2  # two different draws, not one replayed


def test_a_damaged_last_checkpoint_restarts_the_run_from_scratch_with_a_line_in_its_record(probe_workspace):
    """A retried trial finds its last.pt cut short (and best.pt not a checkpoint at all): it
    trains from epoch 1 instead of failing, and the record says why."""
    from avbench.results.layout import run_files
    from avbench.train.checkpoint import DamagedCheckpoint, load_checkpoint

    ctx = RunContext(probe_workspace / "results", synthetic=True, use_wandb=False)
    experiment = probe_config(**{"model_args.failure": "none"})
    first = run_recipe(experiment, ctx, trial=TrialInfo(run_id="damaged"))
    files = run_files(ctx.results, experiment.name, "damaged")
    good = files.best.read_bytes()
    files.last.write_bytes(good[: len(good) // 2])  # as a copy or a disk fault cut short
    files.best.write_bytes(b"not a checkpoint")
    again = run_recipe(experiment, ctx, trial=TrialInfo(run_id="damaged"))
    assert first.status == again.status == "completed" and again.epochs_run == 2 and again.resumed_from_epoch == 0
    assert again.resume_warning.startswith(f"checkpoint {files.last} is damaged")
    assert again.resume_warning.endswith("restarted from scratch")
    files.best.write_bytes(good[:100])  # what a command reading a finished run's best.pt (generate) meets
    with pytest.raises(DamagedCheckpoint, match=f"checkpoint {files.best} is damaged"):
        load_checkpoint(files.best)


def test_a_results_folder_without_room_for_checkpoints_stops_the_sweep_and_requeues_the_trial(
    cli, probe_workspace, monkeypatch
):
    """The free-space check on a real folder, made to fire by a reserve larger than any disk:
    the sweep stops in one line naming the folder and the space needed, the trial is given back
    (like Ctrl-C, not a failure) and the next run, with room, completes the sweep."""
    monkeypatch.setenv("AVBENCH_FREE_SPACE_RESERVE_MB", str(10**12))
    args = ("sweep", "fault-probe-cremad", "--synthetic", "--no-wandb", "--set", "model_args.failure=none")
    args += ("--sweep-config", str(probe_workspace / "lr.yaml"), "--trials", "2")
    (probe_workspace / "lr.yaml").write_text("parameters:\n  train.lr: {values: [0.01, 0.003]}\n")
    (probe_workspace / "experiments" / "fault-probe-cremad.yaml").write_text(
        PROBE_EXPERIMENT.replace("lr: 0.01", "lr: null")
    )
    result = cli(*args, expect=1)
    assert "out of space: " in result.output and "MB free, the run's checkpoints need about" in result.output
    assert "Traceback" not in result.output
    (record,) = iter_records(probe_workspace / "results")
    assert record.status == "interrupted" and record.error.startswith("out of space: ")
    assert not list((probe_workspace / "results").rglob("*.tmp"))
    storage = f"sqlite:///{(probe_workspace / 'results' / 'studies' / 'fault-probe-cremad.db').resolve()}"
    study = optuna.load_study(study_name="fault-probe-cremad-synthetic", storage=storage)
    assert [t.state.name for t in study.trials] == ["FAIL", "WAITING"]  # re-queued, not failed for good

    monkeypatch.delenv("AVBENCH_FREE_SPACE_RESERVE_MB")
    assert "2 finished" in cli(*args).output
    records = {r.run_id: r for r in iter_records(probe_workspace / "results")}
    assert records[record.run_id].status == "completed"
