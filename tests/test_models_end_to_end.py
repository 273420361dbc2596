"""Every registered model trains end to end through `avbench run` on a synthetic stand-in, at
its experiment's `tiny` preset. Parametrised over the model registry: a model without a tiny
experiment fails here, so none can ship untested."""

from __future__ import annotations

import json

import pytest

from avbench.catalog import load_experiment
from avbench.model_info import experiment_for
from avbench.registry import MODELS
from avbench.sweep.space import representative, resolve_space


@pytest.mark.parametrize("model", MODELS.names())
def test_model_trains_through_the_cli(model, cli, workspace):  # workspace: a copy of experiments/ is the cwd
    name = experiment_for(model)  # its CREMA-D experiment when it has one: the session's shared stand-in
    assert name, f"no experiment uses model '{model}'"
    loaded = load_experiment(name, preset="tiny")
    # Each searched field at a middle value of its sweep range, so the run is one real trial.
    values = [f"{key}={json.dumps(representative(p))}" for key, p in resolve_space(loaded).params.items()]
    sets = [arg for value in values for arg in ("--set", value)]
    cli("run", name, "--preset", "tiny", "--synthetic", "--no-wandb", *sets, "--set", "train.epochs=1")
    records = list((workspace / "results" / "runs" / name).glob("*/record.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["status"] == "completed", record.get("error")
    assert record["model"] == model and record["params"] > 0 and record["weights"]
    assert 0.0 <= record["test"]["acc"] <= 1.0 and record["data_sizes"]["train"] > 0
