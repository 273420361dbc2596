"""Deterministic train/val/test assignment shared by the tasks.

Speaker-independent splits (by actor or speaker) follow TFDS `crema_d`: sorted IDs shuffled
with `np.random.RandomState(seed)`, then 70/10/20. With `data.folds: K` the same shuffled
speakers are dealt into K folds instead (speaker i of the shuffle into fold i mod K + 1, so
fold sizes differ by at most one speaker) and `data.fold: k` tests on fold k and validates on
fold k mod K + 1, as ESC-50's predefined folds. Datasets without speakers are split 70/10/20
within every class, so each split has every class in proportion.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Iterator, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from avbench.errors import DatasetError
from avbench.spec import SPLITS

if TYPE_CHECKING:
    from avbench.config import DataConfig

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


def speaker_folds(speakers: list[str], folds: int, seed: int) -> dict[str, int]:
    """speaker → fold 1..`folds`: the shuffle split_actors uses, dealt round-robin."""
    order = sorted(set(speakers))
    if len(order) < folds:
        raise DatasetError(f"data.folds={folds} needs at least {folds} speakers; the data has {len(order)}")
    np.random.RandomState(seed).shuffle(order)
    return {speaker: position % folds + 1 for position, speaker in enumerate(order)}


def split_speakers(speakers: list[str], data: DataConfig) -> tuple[dict[str, str], dict[str, int | None]]:
    """(speaker → split, speaker → fold): 70/10/20 by speaker (folds None), or with `data.folds`
    the speaker folds with `data.fold` held out."""
    if not data.folds:
        return split_actors(speakers, data.split_seed), dict.fromkeys(speakers)
    fold_of = speaker_folds(speakers, data.folds, data.split_seed)
    return {s: fold_split(fold, data.fold, data.folds) for s, fold in fold_of.items()}, dict(fold_of)


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
