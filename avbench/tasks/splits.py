"""Deterministic train/val/test assignment shared by the tasks.

Speaker-independent splits (by actor or speaker) follow TFDS `crema_d`: sorted IDs shuffled
with `np.random.RandomState(seed)`, then 70/10/20. Datasets without speakers are split
70/10/20 within every class, so each split has every class in proportion.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Iterator, Sequence
from fractions import Fraction
from typing import TypeVar

import numpy as np

from avbench.spec import SPLITS

T = TypeVar("T")

SPLIT_FRACTIONS = (Fraction(7, 10), Fraction(1, 10), Fraction(2, 10))


def split_counts(n: int) -> tuple[int, int, int]:
    """How many of `n` units go to train/val/test: 70/10/20 rounded down, then nudged so every
    split gets at least one unit when there are three or more."""
    bounds = [int(sum(SPLIT_FRACTIONS[: i + 1]) * n) for i in range(len(SPLITS))]
    counts = [bounds[0], bounds[1] - bounds[0], n - bounds[1]]
    if n >= len(SPLITS):
        for i, count in enumerate(counts):
            if count == 0:
                donor = int(np.argmax(counts))
                counts[donor] -= 1
                counts[i] += 1
    return counts[0], counts[1], counts[2]


def split_actors(actors: list[str], seed: int) -> dict[str, str]:
    """actor → split. TFDS's 70/10/20 by actor, nudged so each split has an actor when ≥3."""
    order = sorted(set(actors))
    np.random.RandomState(seed).shuffle(order)
    return dict(_in_splits(order))


def stratified_split(labels: Sequence[Hashable], seed: int) -> list[str]:
    """The split of every position in `labels`: 70/10/20 within each class.

    Each class is shuffled by its own generator (seeded by `seed` and the class), so adding
    files of one class never moves the files of another. Callers pass files in a stable
    order (sorted paths) so the result does not depend on directory listing order.
    """
    members: dict[Hashable, list[int]] = {}
    for position, label in enumerate(labels):
        members.setdefault(label, []).append(position)
    result = [""] * len(labels)
    for label, positions in members.items():
        rng = np.random.default_rng([seed, zlib.crc32(str(label).encode("utf-8"))])
        for position, split in _in_splits([positions[i] for i in rng.permutation(len(positions))]):
            result[position] = split
    return result


def _in_splits(order: list[T]) -> Iterator[tuple[T, str]]:
    """Each member of `order` with its split: the first split_counts(len) train, then val, test."""
    start = 0
    for split, count in zip(SPLITS, split_counts(len(order)), strict=True):
        for member in order[start : start + count]:
            yield member, split
        start += count


def fold_split(fold: int, test_fold: int, fold_count: int) -> str:
    """The split of an item in predefined fold `fold` when `test_fold` is held out: the next
    fold (k mod n + 1) is validation, the others train. Cross-validation runs k = 1..n."""
    if fold == test_fold:
        return "test"
    if fold == test_fold % fold_count + 1:
        return "val"
    return "train"
