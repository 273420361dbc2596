"""Conditional sweep parameters: parsing, define-by-run draws, the flat W&B equivalent and
mapping other trials onto a space (warm starts). No training here."""

from __future__ import annotations

import pytest

from avbench.catalog import load_experiment
from avbench.errors import ConfigError
from avbench.sweep.conditional import draw, flat_equivalent, map_onto
from avbench.sweep.space import resolve_space, walk

CONDITIONAL = """\
method: bayes
parameters:
  train.batch_size: {values: [16, 32]}
  train.optimizer:
    values:
      adam: {train.lr: {distribution: log_uniform_values, min: 1.0e-3, max: 1.0e-2}}
      lion: {train.lr: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-3}}
      sgd:
        train.lr: {distribution: log_uniform_values, min: 1.0e-2, max: 1.0e-1}
        train.momentum: {values: [0.0, 0.9]}
"""


@pytest.fixture
def space(workspace):
    (workspace / "sweeps" / "spectrogram-cnn-cremad.yaml").write_text(CONDITIONAL)
    loaded = load_experiment("spectrogram-cnn-cremad", overrides=["train.momentum=null"])
    return resolve_space(loaded)


def test_each_choice_searches_its_own_ranges(space):
    optimizer = space.params["train.optimizer"]
    assert set(space.params) == {"train.batch_size", "train.optimizer"}
    assert optimizer.branches["lion"]["train.lr"].high == 1e-3 and optimizer.branches["adam"]["train.lr"].low == 1e-3
    keys = [key for key, _ in walk(space.params)]
    assert "train.optimizer=lion/train.lr" in keys and "train.optimizer=sgd/train.momentum" in keys
    # momentum is searched for sgd only: adam and lion train with the schema default
    assert set(space.absent_defaults) == {"train.momentum"}
    assert space.grid_size() is None  # lr is continuous


def test_a_draw_takes_only_the_branch_it_opened(space):
    asked = []

    def pick(param, key):
        asked.append(key)
        return (
            "lion"
            if param.kind == "categorical" and "lion" in param.choices
            else param.choices[0]
            if param.choices
            else param.low
        )

    values = space.complete(draw(space.params, pick))
    assert asked == ["train.batch_size", "train.optimizer", "train.optimizer=lion/train.lr"]
    assert values["train.lr"] == 1e-4 and values["train.optimizer"] == "lion"
    assert values["train.momentum"] == space.absent_defaults["train.momentum"]
    experiment = load_experiment("spectrogram-cnn-cremad", overrides=["train.momentum=null"]).resolve(values)
    assert experiment.train.optimizer == "lion" and experiment.train.lr == 1e-4


def test_wandb_gets_a_flat_space_with_joined_ranges_and_a_note(space):
    flat, notes = flat_equivalent(space)
    assert not flat.conditional and (flat.params["train.lr"].low, flat.params["train.lr"].high) == (1e-4, 1e-1)
    assert flat.params["train.momentum"].choices == (0.0, 0.9)
    assert any("no conditional parameters" in note and "train.lr" in note for note in notes)


def test_branches_without_a_flat_equivalent_are_refused(workspace):
    (workspace / "sweeps" / "spectrogram-cnn-cremad.yaml").write_text(
        "parameters:\n  train.batch_size: {values: [16]}\n  train.optimizer:\n    values:\n"
        "      adam: {train.lr: {distribution: log_uniform_values, min: 1.0e-3, max: 1.0e-2}}\n"
        "      lion: {train.lr: {values: [0.0001, 0.0003]}}\n"
    )
    space = resolve_space(load_experiment("spectrogram-cnn-cremad"))
    with pytest.raises(ConfigError, match="no flat equivalent"):
        flat_equivalent(space)


def test_a_field_both_at_the_top_and_in_a_branch_is_an_error(workspace):
    (workspace / "sweeps" / "spectrogram-cnn-cremad.yaml").write_text(
        "parameters:\n  train.lr: {min: 0.001, max: 0.01}\n  train.batch_size: {values: [16]}\n"
        "  train.optimizer:\n    values:\n      adam: {train.lr: {min: 0.001, max: 0.01}}\n"
    )
    with pytest.raises(ConfigError, match="both at the top and under 'train.optimizer'"):
        resolve_space(load_experiment("spectrogram-cnn-cremad"))


def test_a_bad_range_inside_a_branch_fails_before_training(workspace):
    (workspace / "sweeps" / "spectrogram-cnn-cremad.yaml").write_text(
        "parameters:\n  train.batch_size: {values: [16]}\n  train.optimizer:\n    values:\n"
        "      adam: {train.lr: {min: -1.0, max: 0.01}}\n"
    )
    with pytest.raises(ConfigError, match="train.lr.*allows -1.0"):
        resolve_space(load_experiment("spectrogram-cnn-cremad"))


def test_other_values_are_clipped_or_dropped_onto_the_space(space):
    mapped, notes = map_onto(
        space, {"train.optimizer": "lion", "train.lr": 0.05, "train.batch_size": 64, "train.seed": 3}
    )
    assert mapped == {"train.optimizer": "lion", "train.optimizer=lion/train.lr": 1e-3}
    assert any("clipped to 0.001" in n for n in notes) and any("train.batch_size=64" in n for n in notes)


def test_optuna_draws_each_branch_under_its_own_distribution(space):
    import optuna

    from avbench.sweep.backends.optuna import OptunaTrial
    from avbench.sweep.samplers import make_sampler

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", sampler=make_sampler(space, "tpe", 0))
    for _ in range(12):
        trial = OptunaTrial(study, study.ask(), space)
        study.tell(trial.trial, 1.0 if trial.values["train.optimizer"] == "lion" else 0.0)
    trials = study.get_trials()
    for frozen in trials:
        chosen = frozen.params["train.optimizer"]
        branch = {key for key in frozen.params if "/" in key}
        assert branch == (
            {f"train.optimizer={chosen}/train.lr"}
            | ({"train.optimizer=sgd/train.momentum"} if chosen == "sgd" else set())
        )
    lion = next(t for t in trials if t.params["train.optimizer"] == "lion")
    assert lion.distributions["train.optimizer=lion/train.lr"].high == 1e-3
    # past the random start-up trials, TPE models each branch's parameters (group-decomposed)
    relative = study.sampler.infer_relative_search_space(study, trials[-1])
    assert {"train.optimizer", "train.optimizer=lion/train.lr"} <= set(relative)
