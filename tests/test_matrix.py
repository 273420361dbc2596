"""Every compatible (model, task) pair of the grid is an experiment that validates and trains.

Parametrised over the registries' grid (avbench.derived.matrix), not over the files: a new model
or task is tested with every partner at once, whether a tuned file exists for the pair or it is
derived. Each pair trains one epoch of its `tiny` preset through `avbench run`, in-process, on
the session's tiny stand-ins (each written once).
"""

from __future__ import annotations

import json

import pytest

from avbench.catalog import load_experiment
from avbench.derived import incompatibility, matrix
from avbench.preflight import check_feasible
from avbench.registry import MODELS, TASKS
from avbench.sweep.conditional import representative_values
from avbench.sweep.space import resolve_space

pytestmark = pytest.mark.heavy  # minutes of sweeps: scheduled first (tests/conftest.py)

PAIRS = [cell for cell in matrix() if cell.kind != "incompatible"]


def test_the_grid_is_every_model_with_every_task():
    cells = {(cell.model, cell.task): cell for cell in matrix()}
    assert set(cells) == {(m, t) for m in MODELS.names() for t in TASKS.names()}
    for (model, task), cell in cells.items():
        assert (cell.kind == "incompatible") == (cell.kind != "file" and incompatibility(model, task) is not None)
        if "video" in MODELS.get(model).modalities and "video" not in TASKS.get(task).modalities:
            assert cell.kind == "incompatible" and "video" in cell.detail


@pytest.fixture(scope="module")
def shared_results(tmp_path_factory):
    """One results folder for the grid, so pairs that read a task's clips the same way share
    the feature cache (each pair's record still lands in its own runs/<experiment>/)."""
    return tmp_path_factory.mktemp("matrix-results")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models train as fast on one thread, and far faster when the cores are shared:
    two threads' barriers wait on each other while other processes hold the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("cell", PAIRS, ids=[cell.name for cell in PAIRS])
def test_every_compatible_pair_validates_and_trains_one_tiny_epoch(cell, cli, shared_results):
    loaded = load_experiment(cell.name, preset="tiny")
    assert (loaded.config.model, loaded.config.task) == (cell.model, cell.task)
    # Each searched field at the middle of its range: one real trial of the pair's sweep.
    values = representative_values(resolve_space(loaded))
    check_feasible(loaded.resolve(values))
    sets = [arg for key, value in values.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    run = ("run", cell.name, "--preset", "tiny", "--synthetic", "--no-wandb", *sets, "--set", "train.epochs=1")
    cli("--results", str(shared_results), *run)
    records = list((shared_results / "runs" / cell.name).glob("*/record.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["status"] == "completed", record.get("error")
    assert record["model"] == cell.model and record["task"] == cell.task
    assert record["params"] > 0 and record["weights"] and record["data_sizes"]["train"] > 0
    assert 0.0 <= record["test"][record["metric"]] <= 1.0  # the selection metric: `<head>/acc` with heads


DERIVED = [cell for cell in matrix() if cell.kind == "derived"]


@pytest.mark.parametrize("cell", DERIVED, ids=[cell.name for cell in DERIVED])
def test_every_value_a_derived_sweep_may_pick_can_be_built(cell, workspace):
    """A derived experiment has no hand-checked file: each choice and bound of its space, at
    every preset, must give a model that can be built (checked before any data is read)."""
    for preset in (None, *load_experiment(cell.name).raw["presets"]):
        loaded = load_experiment(cell.name, preset=preset)
        space = resolve_space(loaded)
        middle = representative_values(space)
        for key, param in space.params.items():
            picks = param.choices if param.kind == "categorical" else (param.low, param.high)
            for value in picks:
                check_feasible(loaded.resolve({**middle, key: int(value) if param.kind == "int" else value}))
