"""The statistics behind the leaderboard and `avbench compare`, in plain Python and numpy.

- `t_interval`: mean ± Student t 95 % interval over replicates (seeds, folds × seeds);
- `paired_bootstrap`: the difference of two classifiers on the same test clips, with a
  percentile bootstrap interval (clips resampled; one replicate of each side drawn per
  resample, so seed-to-seed variance widens the interval too);
- `mcnemar_exact`: McNemar's exact (binomial) two-sided p for two sets of paired predictions.

No scipy: the t quantile comes from the regularised incomplete beta function, inverted by
bisection. No torch: the leaderboard imports this.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0  # fixed: the same predictions always give the same interval


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Lentz's continued fraction for the incomplete beta function (Numerical Recipes §6.4)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t value below which a fraction `p` (0.5 < p < 1) of Student's t lies."""
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        mid = (low + high) / 2.0
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
        if high - low < 1e-12:
            break
    return (low + high) / 2.0


@dataclass(frozen=True)
class Interval:
    """A mean over n runs, their sample std, and the 95 % t interval (None for one run: no
    interval is invented from a single number)."""

    mean: float
    std: float | None
    ci95: tuple[float, float] | None
    n: int


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """mean ± t_{(1+c)/2, n-1} · s / sqrt(n) over `values`."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("no values")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Interval(mean, None, None, len(values))
    std = statistics.stdev(values)
    half = t_quantile((1.0 + confidence) / 2.0, len(values) - 1) * std / math.sqrt(len(values))
    return Interval(mean, std, (mean - half, mean + half), len(values))


def overlaps(a: tuple[float, float] | None, b: tuple[float, float] | None, a_mean: float, b_mean: float) -> bool:
    """Whether two rows' intervals overlap; a row with one run is its mean (a point)."""
    low_a, high_a = a if a is not None else (a_mean, a_mean)
    low_b, high_b = b if b is not None else (b_mean, b_mean)
    return low_a <= high_b and low_b <= high_a


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Two-sided exact McNemar p: of the clips exactly one model gets right (b for A, c for
    B), is the split b : c compatible with Binomial(b + c, 1/2)? Exact integer arithmetic."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1))
    return min(1.0, 2 * tail / 2**n)


def confusion_counts(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """[..., C, C] counts (rows: label, columns: prediction) over the last axis of the inputs."""
    flat = labels * num_classes + predictions
    shape = flat.shape[:-1]
    cells = num_classes * num_classes
    rows = flat.reshape(-1, flat.shape[-1])
    # One bincount for every row at once: row r's cells are offset by r · C².
    offsets = np.arange(len(rows))[:, None] * cells
    counts = np.bincount((rows + offsets).ravel(), minlength=len(rows) * cells)
    return counts.reshape(*shape, num_classes, num_classes)


def metric_from_confusion(confusion: np.ndarray, metric: str) -> np.ndarray:
    """acc, uar (mean recall over the classes present) or macro_f1 of [..., C, C] confusions,
    as avbench.train.metrics computes them."""
    confusion = confusion.astype(float)
    diagonal = np.diagonal(confusion, axis1=-2, axis2=-1)
    support = confusion.sum(axis=-1)
    if metric == "acc":
        return diagonal.sum(axis=-1) / np.maximum(support.sum(axis=-1), 1.0)
    recall = np.divide(diagonal, support, out=np.zeros_like(diagonal), where=support > 0)
    present = support > 0
    if metric == "uar":
        return (recall * present).sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)
    if metric == "macro_f1":
        predicted = confusion.sum(axis=-2)
        precision = np.divide(diagonal, predicted, out=np.zeros_like(diagonal), where=predicted > 0)
        total = precision + recall
        f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
        return (f1 * present).sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)
    raise ValueError(f"unknown metric {metric}")


def per_run(labels: np.ndarray, predictions: np.ndarray, num_classes: int, metric: str) -> np.ndarray:
    """The metric of each row of `predictions` [runs, clips] against `labels` [clips]."""
    predictions = np.atleast_2d(predictions).astype(np.int64)
    labels = np.broadcast_to(np.asarray(labels, dtype=np.int64), predictions.shape)
    return metric_from_confusion(confusion_counts(labels, predictions, num_classes), metric)


@dataclass(frozen=True)
class PairedDifference:
    metric: str
    difference: float  # mean over A's replicates − mean over B's, on the same clips
    ci95: tuple[float, float]
    resamples: int


def paired_bootstrap(
    labels: np.ndarray,
    predictions_a: np.ndarray,
    predictions_b: np.ndarray,
    num_classes: int,
    metric: str,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> PairedDifference:
    """`predictions_*` are [replicates, clips] on the same clips as `labels` [clips]. Each
    resample draws the clips with replacement and one replicate of each side."""
    labels = np.asarray(labels, dtype=np.int64)
    a, b = np.atleast_2d(predictions_a).astype(np.int64), np.atleast_2d(predictions_b).astype(np.int64)
    difference = float(per_run(labels, a, num_classes, metric).mean() - per_run(labels, b, num_classes, metric).mean())
    rng = np.random.default_rng(seed)
    clips = rng.integers(0, len(labels), size=(resamples, len(labels)))
    pick_a, pick_b = rng.integers(0, len(a), size=resamples), rng.integers(0, len(b), size=resamples)
    drawn = labels[clips]
    left = metric_from_confusion(confusion_counts(drawn, a[pick_a[:, None], clips], num_classes), metric)
    right = metric_from_confusion(confusion_counts(drawn, b[pick_b[:, None], clips], num_classes), metric)
    tail = (1.0 - confidence) / 2.0 * 100
    low, high = np.percentile(left - right, [tail, 100 - tail])
    return PairedDifference(metric, difference, (float(low), float(high)), resamples)
