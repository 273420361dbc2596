"""`avbench compare A B`: two experiments' val-selected configs, paired on the same test clips.

Each side is the run the leaderboard selects (avbench.results.selection) with its replicates
on the same clips (replicates on other folds test other clips and are left out); their
predictions.npz are aligned by file id. The difference of the metric (mean over A's runs −
mean over B's) gets a paired bootstrap 95 % interval and the two selected runs McNemar's
exact p on accuracy (avbench.results.stats). Different test sets are refused in one line:
a comparison on different clips is not paired. No torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from avbench.errors import AvbenchError
from avbench.results.layout import run_files
from avbench.results.predictions import Predictions, read_predictions
from avbench.results.records import RunRecord, iter_records
from avbench.results.selection import select
from avbench.results.stats import mcnemar_exact, paired_bootstrap, per_run
from avbench.spec import split_metric

COMPARED_METRICS = ("acc", "uar", "macro_f1")


@dataclass(frozen=True)
class Side:
    experiment: str
    run_id: str  # the val-selected run
    runs: int  # it and its replicates on the same clips
    score: float  # the metric, mean over those runs


@dataclass(frozen=True)
class Comparison:
    metric: str
    a: Side
    b: Side
    difference: float
    ci95: tuple[float, float]
    p_value: float  # McNemar's exact, on the selected runs' accuracy
    n_clips: int
    data: str

    def to_json(self) -> dict:
        return {**asdict(self), "ci95": list(self.ci95), "p_value_test": "McNemar exact, accuracy of the selected runs"}


def _is_fold(record: RunRecord) -> bool:
    return bool(record.cv and record.cv.get("fold") is not None)


def _side_runs(results: Path, experiment: str, data_kind: str) -> tuple[RunRecord, list[Predictions]]:
    """The selected run and the predictions of it and its replicates that test the same clips."""
    runs = [r for r in iter_records(results) if r.experiment == experiment and r.data_kind == data_kind]
    folds = [r for r in runs if _is_fold(r)]
    selection = select([r for r in runs if not _is_fold(r)])
    if selection is None and select(folds) is not None:
        raise AvbenchError(f"{experiment} has only cross-validation folds, each testing other clips: nothing to pair")
    if selection is None:
        raise AvbenchError(f"no completed {data_kind} run of {experiment} under {results}; run or sweep it first")
    head, _ = split_metric(selection.best.metric)
    predictions = [
        read_predictions(run_files(results, r.experiment, r.run_id).predictions, head) for r in selection.runs
    ]
    own = set(predictions[0].file_ids.tolist())
    return selection.best, [p for p in predictions if set(p.file_ids.tolist()) == own]


def _aligned(predictions: list[Predictions]) -> tuple[np.ndarray, np.ndarray]:
    """(labels [clips], predictions [runs, clips]), the clips sorted by file id."""
    rows, labels = [], None
    for p in predictions:
        index = np.argsort(p.file_ids)
        rows.append(p.predictions[index])
        labels = p.labels[index] if labels is None else labels
    return labels, np.stack(rows)


def _refuse_unpaired(a: list[Predictions], b: list[Predictions], names: tuple[str, str]) -> None:
    ids_a, ids_b = set(a[0].file_ids.tolist()), set(b[0].file_ids.tolist())
    if ids_a != ids_b:
        raise AvbenchError(
            f"{names[0]} and {names[1]} were tested on different clips ({len(ids_a)} and {len(ids_b)}, "
            f"{len(ids_a & ids_b)} shared): a paired comparison needs the same test split"
        )
    if a[0].num_classes != b[0].num_classes:
        raise AvbenchError(f"{names[0]} and {names[1]} predict different numbers of classes")


def compare(
    results: Path, experiment_a: str, experiment_b: str, *, metric: str = "acc", data: str = "real"
) -> Comparison:
    """A − B on their shared test clips; one line when they cannot be paired."""
    if metric not in COMPARED_METRICS:
        raise AvbenchError(f"--metric {metric}: choose {', '.join(COMPARED_METRICS)}")
    best_a, runs_a = _side_runs(results, experiment_a, data)
    best_b, runs_b = _side_runs(results, experiment_b, data)
    _refuse_unpaired(runs_a, runs_b, (experiment_a, experiment_b))
    labels, preds_a = _aligned(runs_a)
    labels_b, preds_b = _aligned(runs_b)
    if not np.array_equal(labels, labels_b):
        raise AvbenchError(f"{experiment_a} and {experiment_b} label the same clips differently: not the same test set")
    classes = runs_a[0].num_classes
    paired = paired_bootstrap(labels, preds_a, preds_b, classes, metric)
    score = {
        name: float(per_run(labels, preds, classes, metric).mean()) for name, preds in (("a", preds_a), ("b", preds_b))
    }
    return Comparison(
        metric=metric,
        a=Side(experiment_a, best_a.run_id, len(runs_a), score["a"]),
        b=Side(experiment_b, best_b.run_id, len(runs_b), score["b"]),
        difference=paired.difference,
        ci95=paired.ci95,
        p_value=mcnemar_exact(preds_a[0] == labels, preds_b[0] == labels),
        n_clips=len(labels),
        data=data,
    )


@dataclass(frozen=True)
class BoardPair:
    """The top row of a leaderboard against another row of the same board, as `compare` pairs them."""

    task: str
    data: str
    leader: str
    other: str
    comparison: Comparison | None
    refused: str = ""  # why the two could not be paired (different test clips, cross-validated, …)


def board_comparisons(results: Path, rows: list[dict]) -> list[BoardPair]:
    """Each real row against the top row of its (task, kind of data) board: the question a
    leaderboard raises is whether the leader's lead over each other row is more than noise.
    `rows` are leaderboard rows (avbench.results.leaderboard), best first within each board."""
    boards: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if not row.get("is_control"):  # controls are compared to their real row by the board itself
            boards.setdefault((row["task"], row["data"]), []).append(row)
    pairs = []
    for (task, data), board in boards.items():
        leader = board[0]["experiment"]
        metric = split_metric(board[0]["metric"])[1]
        for row in board[1:]:
            if row["experiment"] == leader:
                continue  # one experiment with several models' rows: nothing to pair
            try:
                found = compare(results, leader, row["experiment"], metric=_compared(metric), data=data)
            except AvbenchError as exc:
                pairs.append(BoardPair(task, data, leader, row["experiment"], None, str(exc)))
                continue
            pairs.append(BoardPair(task, data, leader, row["experiment"], found))
    return pairs


def _compared(metric: str) -> str:
    """The board's metric where `compare` computes it, accuracy otherwise."""
    return metric if metric in COMPARED_METRICS else "acc"
