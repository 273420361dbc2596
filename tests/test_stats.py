"""The statistics of the leaderboard and `avbench compare` against values known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avbench.results.stats import mcnemar_exact, metric_from_confusion, paired_bootstrap, t_interval, t_quantile
from avbench.train.metrics import classification_metrics


@pytest.mark.parametrize(("df", "expected"), [(1, 12.7062), (2, 4.3027), (4, 2.7764), (10, 2.2281), (30, 2.0423)])
def test_t_quantile_matches_the_table(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=5e-4)


def test_t_interval_of_three_runs():
    interval = t_interval([0.70, 0.72, 0.74])
    # mean 0.72, s = 0.02, t(0.975, 2) = 4.3027: half-width 4.3027 · 0.02 / √3.
    half = 4.302653 * 0.02 / math.sqrt(3)
    assert interval.mean == pytest.approx(0.72)
    assert interval.std == pytest.approx(0.02)
    assert interval.ci95 == pytest.approx((0.72 - half, 0.72 + half), abs=1e-6)
    assert interval.n == 3


def test_one_run_has_no_interval():
    interval = t_interval([0.7])
    assert (interval.mean, interval.std, interval.ci95, interval.n) == (0.7, None, None, 1)


def test_mcnemar_exact_by_hand():
    # A alone right on 1 clip, B alone right on 6: n = 7, P(X <= 1) = (1 + 7) / 128, two-sided 16 / 128.
    a = np.array([1] * 1 + [0] * 6 + [1] * 5 + [0] * 3, dtype=bool)
    b = np.array([0] * 1 + [1] * 6 + [1] * 5 + [0] * 3, dtype=bool)
    assert mcnemar_exact(a, b) == pytest.approx(16 / 128)
    assert mcnemar_exact(a, a) == 1.0


def test_metrics_from_confusion_match_the_training_metrics():
    rng = np.random.default_rng(1)
    labels, preds = rng.integers(0, 4, 50), rng.integers(0, 3, 50)
    expected = classification_metrics(labels, preds, 4)
    confusion = np.array(expected["confusion"])
    for metric in ("acc", "uar", "macro_f1"):
        assert float(metric_from_confusion(confusion, metric)) == pytest.approx(expected[metric])


def test_paired_bootstrap_interval_holds_the_difference():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 300)
    better = np.where(rng.random((2, 300)) < 0.8, labels, (labels + 1) % 3)
    worse = np.where(rng.random((3, 300)) < 0.6, labels, (labels + 1) % 3)
    result = paired_bootstrap(labels, better, worse, 3, "acc")
    expected = (better == labels).mean(axis=1).mean() - (worse == labels).mean(axis=1).mean()
    assert result.difference == pytest.approx(expected)
    low, high = result.ci95
    assert low < result.difference < high
    assert low > 0  # 20 points apart on 300 clips is not chance
    assert paired_bootstrap(labels, better, worse, 3, "acc").ci95 == result.ci95  # fixed seed
