"""The pruners a sweep gets: the median pruner waits for 5 finished trials and prunes nothing
before a third of the epochs (a trial at chance through the warm-up may still win); hyperband
takes its first rung from the sweep file's early_terminate. Below the median means below it by
more than one standard error of the trial's validation split."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest

from avbench.sweep.samplers import MEDIAN_STARTUP_TRIALS, VAL_EXAMPLES, make_pruner, median_warmup_epochs

NO_EARLY_TERMINATE = SimpleNamespace(early_terminate={})


def _study(pruner, finished: int) -> optuna.Study:
    """`finished` completed trials that learned: val/acc 0.5 from epoch 1, 0.9 at the end."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for _ in range(finished):
        trial = study.ask()
        for epoch in range(1, 11):
            trial.report(0.5 + 0.04 * epoch, epoch)
        study.tell(trial, 0.9)
    return study


def _first_pruned_epoch(study: optuna.Study, curve: list[float]) -> int | None:
    trial = study.ask()
    for epoch, value in enumerate(curve, 1):
        trial.report(value, epoch)
        if trial.should_prune():
            return epoch
    return None


@pytest.mark.parametrize(("epochs", "warmup"), [(10, 3), (30, 10), (4, 2), (None, 2)])
def test_the_median_pruner_waits_a_third_of_the_epochs(epochs, warmup):
    assert median_warmup_epochs(epochs) == warmup
    pruner = make_pruner(None, "median", NO_EARLY_TERMINATE, epochs)
    at_chance = [0.17] * 10
    assert _first_pruned_epoch(_study(pruner, MEDIAN_STARTUP_TRIALS), at_chance) == warmup
    # A late starter that catches up by the end of the warm-up is kept.
    late = [0.17] * (warmup - 1) + [0.95] * (11 - warmup)
    assert _first_pruned_epoch(_study(pruner, MEDIAN_STARTUP_TRIALS), late) is None


def test_the_median_pruner_prunes_nothing_before_five_trials_finished():
    pruner = make_pruner("median", "none", NO_EARLY_TERMINATE, 10)
    assert _first_pruned_epoch(_study(pruner, MEDIAN_STARTUP_TRIALS - 1), [0.17] * 10) is None


def test_hyperband_starts_at_the_sweep_files_min_iter_and_none_prunes_nothing():
    space = SimpleNamespace(early_terminate={"type": "hyperband", "min_iter": 3})
    hyperband = make_pruner(None, "median", space, 10)
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner) and hyperband._min_resource == 3
    assert isinstance(make_pruner("none", "median", space, 10), optuna.pruners.NopPruner)


def _pruned_below_a_median_of_half(value: float, examples: int | None) -> bool:
    """A trial at `value` through epoch 4 (past the warm-up of 10 epochs), among five finished
    trials at 0.5 on every epoch, scored on `examples` validation examples."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", pruner=make_pruner("median", "none", NO_EARLY_TERMINATE, 10))
    for _ in range(MEDIAN_STARTUP_TRIALS):
        trial = study.ask()
        for epoch in range(1, 11):
            trial.report(0.5, epoch)
        study.tell(trial, 0.5)
    trial = study.ask()
    if examples is not None:
        trial.set_user_attr(VAL_EXAMPLES, examples)
    for epoch in range(1, 5):
        trial.report(value, epoch)
    return trial.should_prune()


@pytest.mark.parametrize(
    ("value", "examples", "pruned"),
    [
        (5 / 12, 12, False),  # one clip of 12 below: sqrt(0.25 / 12) = 0.144 cannot tell them apart
        (4 / 12, 12, True),  # two clips below: 0.167 > 0.144
        (0.48, 1000, True),  # 0.02 below on 1 000 examples: > 0.016
        (0.49, 1000, False),
        (0.49, None, True),  # a trial that never said its split's size: Optuna's median rule
        (float("nan"), 12, True),  # no value at all: stopped, as by Optuna's rule
    ],
)
def test_the_median_pruner_ignores_differences_the_validation_split_cannot_resolve(value, examples, pruned):
    assert _pruned_below_a_median_of_half(value, examples) is pruned
