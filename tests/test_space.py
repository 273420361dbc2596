"""Search spaces: W&B sweep-config vocabulary, defaults, and range errors before training."""

from __future__ import annotations

import pytest

from avbench.catalog import load_experiment
from avbench.errors import ConfigError
from avbench.sweep.space import parse_param, resolve_space
from tests.conftest import BUILTIN


def test_builtin_sweep_file_is_used(workspace):
    import yaml

    declared = yaml.safe_load((BUILTIN / "sweeps" / "spectrogram-cnn-cremad.yaml").read_text())["parameters"]
    space = resolve_space(load_experiment("spectrogram-cnn-cremad"))
    assert space.source == "built-in sweeps/spectrogram-cnn-cremad.yaml"
    optimizer = space.params["train.optimizer"]  # conditional: each optimizer its own lr range
    assert optimizer.choices == tuple(declared["train.optimizer"]["values"])
    for choice, branch in declared["train.optimizer"]["values"].items():
        lr = optimizer.branches[choice]["train.lr"]
        assert (
            lr.kind == "float"
            and lr.log
            and (lr.low, lr.high) == (branch["train.lr"]["min"], branch["train.lr"]["max"])
        )
    assert space.metric == "val/acc"


@pytest.mark.parametrize(
    "spec,kind",
    [
        ({"values": [1, 2]}, "categorical"),
        ({"value": 3}, "categorical"),
        ({"min": 1, "max": 4}, "int"),
        ({"min": 0.1, "max": 0.5}, "float"),
        ({"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}, "float"),
    ],
)
def test_wandb_distributions(spec, kind):
    assert parse_param("x", spec).kind == kind


def test_nested_wandb_parameters_are_flattened(workspace):
    (workspace / "sweeps" / "spectrogram-cnn-cremad.yaml").write_text(
        "method: random\nparameters:\n  train:\n    parameters:\n      lr: {min: 0.001, max: 0.01}\n"
        "      batch_size: {values: [4]}\n      optimizer: {values: [sgd]}\n"
    )
    space = resolve_space(load_experiment("spectrogram-cnn-cremad"))
    assert set(space.params) == {"train.lr", "train.batch_size", "train.optimizer"} and space.method == "random"


def test_a_user_sweep_file_shadows_the_builtin_one(workspace):
    (workspace / "sweeps" / "spectrogram-cnn-cremad.yaml").write_text(
        "parameters:\n  train.lr: {min: 0.001, max: 0.002}\n  train.batch_size: {values: [4]}\n"
        "  train.optimizer: {values: [sgd]}\n"
    )
    space = resolve_space(load_experiment("spectrogram-cnn-cremad"))
    assert space.source == "sweeps/spectrogram-cnn-cremad.yaml" and space.params["train.lr"].high == 0.002


def test_defaults_apply_without_a_sweep_file(workspace):
    source = (BUILTIN / "experiments" / "spectrogram-cnn-cremad.yaml").read_text()
    (workspace / "experiments" / "own-cremad.yaml").write_text(source)
    space = resolve_space(load_experiment("own-cremad"))
    assert space.source == "defaults" and space.params["train.batch_size"].choices == (8, 16, 32, 64)


def test_a_null_model_argument_takes_the_range_its_model_declares(workspace):
    from avbench.registry import MODELS

    loaded = load_experiment("spectrogram-cnn-cremad", overrides=["model_args.drop_rate=null"])
    (workspace / "sweeps" / "spectrogram-cnn-cremad.yaml").write_text(
        "parameters:\n  train.lr: {min: 0.001, max: 0.01}\n"
    )
    space = resolve_space(loaded)
    declared = MODELS.get("spectrogram-cnn").search["model_args.drop_rate"]
    drop = space.params["model_args.drop_rate"]
    assert (drop.low, drop.high) == (declared["min"], declared["max"])
    assert space.origins["model_args.drop_rate"] == "model 'spectrogram-cnn' default"


def test_null_without_range_is_an_error(workspace):
    loaded = load_experiment("spectrogram-cnn-cremad", overrides=["train.seed=null"])
    with pytest.raises(ConfigError, match="'train.seed' is null .* no range"):
        resolve_space(loaded)


def test_range_for_a_field_that_is_not_null_is_an_error(workspace):
    loaded = load_experiment("spectrogram-cnn-cremad", overrides=["train.lr=0.1"])
    with pytest.raises(ConfigError, match="range for 'train.lr' which is not a searched field"):
        resolve_space(loaded)


def test_a_range_with_an_invalid_value_fails_before_training(workspace):
    (workspace / "sweeps" / "spectrogram-cnn-cremad.yaml").write_text(
        "parameters:\n  train.lr: {min: 0.001, max: 0.01}\n  train.batch_size: {values: [8, 0]}\n"
        "  train.optimizer: {values: [adam, rmsprop]}\n"
    )
    with pytest.raises(ConfigError, match="batch_size.*allows 0"):
        resolve_space(load_experiment("spectrogram-cnn-cremad"))


def test_metric_must_match_train_metric(workspace):
    builtin = (BUILTIN / "sweeps" / "spectrogram-cnn-cremad.yaml").read_text()
    (workspace / "sweeps" / "spectrogram-cnn-cremad.yaml").write_text(builtin.replace("val/acc", "val/uar"))
    with pytest.raises(ConfigError, match="metric must be"):
        resolve_space(load_experiment("spectrogram-cnn-cremad"))
