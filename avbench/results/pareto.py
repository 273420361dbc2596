"""`avbench leaderboard --pareto`: the runs of a task that no other run beats on accuracy,
parameters and latency at once (validation accuracy, as the leaderboard selects on it; the
test metrics are reported beside). Every completed run counts, across models and sweeps, so a
multi-objective sweep's front shows up whole. Runs on synthetic or real data are never mixed.
"""

from __future__ import annotations

import math
from typing import Any

from avbench.results.leaderboard import fold_cross_validation
from avbench.results.records import RunRecord
from avbench.spec import METRICS, split_metric


def costs(record: RunRecord) -> tuple[float, float, float]:
    """What --pareto minimises: minus validation accuracy, parameters, latency per clip
    (a run whose latency was not measured counts as the slowest)."""
    latency = record.latency_ms if record.latency_ms is not None else math.inf
    return (-record.val[record.metric], float(record.params), latency)


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and a != b


def non_dominated(records: list[RunRecord]) -> list[RunRecord]:
    scored = [(costs(r), r) for r in records]
    return [r for c, r in scored if not any(dominates(other, c) for other, _ in scored)]


def pareto_rows(records: list[RunRecord], task: str | None = None) -> list[dict[str, Any]]:
    """Leaderboard-shaped rows of each (task, data kind)'s non-dominated completed runs."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    folded, _ = fold_cross_validation(records)  # a cross-validation is one result, its folds' means
    for record in folded:
        if record.status == "completed" and record.test and record.metric in record.val:
            if task is None or record.task == task:
                groups.setdefault((record.task, record.data_kind), []).append(record)
    rows = []
    for (task_name, data_kind), group in sorted(groups.items()):
        front = sorted(non_dominated(group), key=costs)
        rows += [_row(r, task_name, data_kind) for r in front]
    return rows


def _row(record: RunRecord, task: str, data_kind: str) -> dict[str, Any]:
    head, _ = split_metric(record.metric)
    prefix = f"{head}/" if head else ""
    row: dict[str, Any] = {"experiment": record.experiment, "task": task, "model": record.model, "data": data_kind}
    row.update({"n_trials": 1, "metric": record.metric, "run_id": record.run_id})
    row.update({f"val/{m}": record.val.get(prefix + m) for m in METRICS})
    row.update({f"test/{m}": record.test.get(prefix + m) for m in METRICS})
    row.update({"params": record.params, "latency_ms": record.latency_ms, "searched": record.searched})
    return row
