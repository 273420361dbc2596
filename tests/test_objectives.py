"""Several objectives, warm starts and the samplers added for them: end to end through the
CLI on the fast mel-stats MLP (tiny stand-in), and their rules on their own."""

from __future__ import annotations

import json

import optuna
import pytest
import torch
from torch import nn

from avbench.errors import ConfigError
from avbench.results.pareto import non_dominated
from avbench.results.records import RunRecord, iter_records
from avbench.sweep.objectives import parse_objective
from avbench.train.cost import latency_ms

TINY = ("--preset", "tiny", "--synthetic", "--no-wandb")
HIDDEN_GRID = (
    "method: grid\nmetric: {name: val/acc, goal: maximize}\nparameters:\n  model_args.hidden: {values: [4, 16, 64]}\n"
)
FIXED = ("--set", "model_args.hidden=null", "--set", "train.lr=0.003", "--set", "train.weight_decay=0.0")
FIXED += ("--set", "model_args.dropout=0.0")


def storage(workspace) -> str:
    return f"sqlite:///{workspace / 'results' / 'studies' / 'mel-stats-mlp-cremad.db'}"


def test_a_two_objective_sweep_shows_its_pareto_front_and_the_leaderboard_lists_it(cli, workspace):
    (workspace / "sweeps" / "mel-stats-mlp-cremad.yaml").write_text(HIDDEN_GRID)
    args = ("--objective", "val/acc:max", "--objective", "params:min", "--trials", "3")
    out = cli("sweep", "mel-stats-mlp-cremad", *TINY, *FIXED, *args).output
    assert "pruning is off" in out and "Pareto front" in out
    study = optuna.load_study(study_name="mel-stats-mlp-cremad-tiny-synthetic", storage=storage(workspace))
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    records = [r for r in iter_records(workspace / "results") if r.status == "completed"]
    assert len(records) == 3
    for record in records:  # every record carries what the cost objectives read
        assert record.latency_ms > 0 and record.train_time_s > 0 and record.peak_memory_mb > 0
        assert record.peak_memory_kind == "process peak RSS"
    # The front is exactly the trials no other beats on both objectives.
    values = {t.number: (t.values[0], -t.values[1]) for t in study.trials}
    front = {n for n, v in values.items() if not any(o != v and o[0] >= v[0] and o[1] >= v[1] for o in values.values())}
    assert {t.number for t in study.best_trials} == front
    shown = cli("show", "mel-stats-mlp-cremad", "--no-plots").output
    assert "Pareto front" in shown and f"{len(front)} trial(s)" in shown
    rows = json.loads(cli("leaderboard", "--pareto", "--format", "json").output)
    assert {r["run_id"] for r in rows} == {r.run_id for r in non_dominated(records)}
    assert all("latency_ms" in r and "params" in r for r in rows)
    plain = json.loads(cli("leaderboard", "--format", "json").output)
    assert plain[0]["latency_ms"] > 0  # every leaderboard row carries latency and params


def test_a_warm_start_runs_the_source_studys_best_first_and_only_once(cli, workspace):
    (workspace / "results" / "studies").mkdir(parents=True)
    source = optuna.create_study(study_name="yesterday", storage=storage(workspace), direction="maximize")
    lr = optuna.distributions.FloatDistribution(1e-5, 1.0, log=True)
    for value, rate in [(0.3, 1e-3), (0.9, 0.5), (0.6, 2e-3), (0.1, 5e-3)]:
        params = {"train.lr": rate, "train.weight_decay": 1e-3, "model_args.dropout": 0.1}
        dists = {
            "train.lr": lr,
            "train.weight_decay": lr,
            "model_args.dropout": optuna.distributions.FloatDistribution(0, 1),
        }
        source.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=value))
    args = ("--study", "warm", "--warm-start", "yesterday", "--top", "2", "--trials", "3")
    out = cli(
        "sweep", "mel-stats-mlp-cremad", *TINY, *args, "--enqueue", "train.lr=0.0001,model_args.dropout=0.2"
    ).output
    assert "clipped to 0.01" in out  # the best source trial's lr 0.5 is outside this space's [1e-4, 1e-2]
    study = optuna.load_study(study_name="warm", storage=storage(workspace))
    first = sorted(study.trials, key=lambda t: t.number)
    assert [t.params["train.lr"] for t in first] == [0.01, 2e-3, 1e-4]
    assert first[0].user_attrs["enqueued"] == "warm start from yesterday trial 1"
    assert first[2].params["model_args.dropout"] == 0.2
    again = cli("sweep", "mel-stats-mlp-cremad", *TINY, *args, "--enqueue", "train.lr=0.0001,model_args.dropout=0.2")
    assert "enqueued" not in again.output
    assert len(optuna.load_study(study_name="warm", storage=storage(workspace)).trials) == 3


def test_a_warm_start_from_a_study_that_does_not_exist_is_one_line(cli, workspace):
    out = cli("sweep", "mel-stats-mlp-cremad", *TINY, "--warm-start", "nothing-here", expect=1).output
    assert "--warm-start nothing-here: no single study" in out and "Traceback" not in out


def test_objectives_are_checked_before_anything_runs():
    assert str(parse_objective("latency_ms:min")) == "latency_ms:min"
    assert parse_objective("val/emotion/acc:max").metric == "val/emotion/acc"
    with pytest.raises(ConfigError, match="METRIC:max or METRIC:min"):
        parse_objective("val/acc")
    with pytest.raises(ConfigError, match="unknown metric 'latency'.*latency_ms"):
        parse_objective("latency:min")


def test_the_auto_sampler_rule_and_the_gp_sampler(workspace):
    from avbench.catalog import load_experiment
    from avbench.sweep.samplers import auto_sampler, check_sampler, make_sampler
    from avbench.sweep.space import resolve_space

    (workspace / "sweeps" / "mel-stats-mlp-cremad.yaml").write_text(HIDDEN_GRID)
    loaded = load_experiment("mel-stats-mlp-cremad", overrides=list(FIXED[1::2]))
    finite = resolve_space(loaded)
    assert auto_sampler(finite, objectives=1, trials=3) == "grid"
    assert auto_sampler(finite, objectives=1, trials=2) == "tpe"  # more points than trials
    assert auto_sampler(finite, objectives=2, trials=3) == "nsga2"
    continuous = resolve_space(load_experiment("spectrogram-cnn-cremad"))  # conditional lr ranges
    assert auto_sampler(continuous, objectives=1, trials=100) == "tpe"
    assert isinstance(make_sampler(continuous, "gp", 0), optuna.samplers.GPSampler)
    assert check_sampler(continuous, "gp") and "random fallback" in check_sampler(continuous, "gp")[0]
    with pytest.raises(ConfigError, match="optimises one objective"):
        check_sampler(continuous, "cmaes", objectives=2)
    with pytest.raises(ConfigError, match="cannot walk a conditional space"):
        check_sampler(continuous, "grid")


def test_latency_is_the_median_of_timed_batch_one_passes():
    class Slow(nn.Module):
        def __init__(self):
            super().__init__()
            self.calls, self.linear = [], nn.Linear(4, 2)

        def forward(self, batch):
            self.calls.append((self.training, len(batch["audio"])))
            return self.linear(batch["audio"])

    model = Slow().train()
    value = latency_ms(model, {"audio": torch.ones(1, 4)}, torch.device("cpu"), repeats=5)
    assert value > 0 and len(model.calls) == 3 + 5 and all(c == (False, 1) for c in model.calls)
    assert model.training  # the mode is restored


def test_pareto_keeps_exactly_the_non_dominated_runs():
    def record(run_id, acc, params, latency):
        return RunRecord(run_id, "e", "t", "m", status="completed", val={"acc": acc}, params=params, latency_ms=latency)

    runs = [
        record("a", 0.9, 100, 5.0),
        record("b", 0.8, 10, 1.0),
        record("c", 0.8, 20, 2.0),
        record("d", 0.95, 200, None),
    ]
    assert [r.run_id for r in non_dominated(runs)] == ["a", "b", "d"]  # c: b is as accurate, smaller and faster
