"""Best run per (task, model, kind of data), chosen on validation and reported on test.

Reads only results/runs/*/*/record.json: no torch, no network. Synthetic or shuffled-label
runs are never ranked together with runs on real data.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path
from typing import Any

from avbench.results.records import FINISHED, RunRecord, iter_records
from avbench.spec import METRICS, split_metric


def fold_cross_validation(records: list[RunRecord]) -> list[RunRecord]:
    """Replace the folds of each cross-validation by one record holding their means (and
    the test std), complete only when every fold completed: a CV is one result, not n.
    A record whose `cv` has no fold already covers every fold (an auDeep run) and stays."""
    plain = [r for r in records if not r.cv or r.cv.get("fold") is None]
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        if record.cv and record.cv.get("fold") is not None:
            groups.setdefault(record.cv["group"], []).append(record)
    for group, folds in groups.items():
        first = folds[0]
        done = [r for r in folds if r.status == "completed"]
        merged = RunRecord.from_dict({**first.__dict__, "run_id": group, "cv": {**first.cv, "fold": None}})
        if len(done) < first.cv["folds"]:
            merged.status = "failed" if any(r.status == "failed" for r in folds) else "running"
        else:
            merged.status = "completed"
            for split in ("val", "test"):
                values = {m: [getattr(r, split)[m] for r in done] for m in METRICS}
                setattr(merged, split, {m: statistics.fmean(v) for m, v in values.items()})
                if split == "test":
                    merged.test.update({f"{m}_std": statistics.pstdev(v) for m, v in values.items()})
        plain.append(merged)
    return plain


def leaderboard_rows(
    results: Path, task: str | None = None, records: list[RunRecord] | None = None
) -> list[dict[str, Any]]:
    """One row per (task, model, kind of data); `records` when the caller already read them."""
    groups: dict[tuple[str, str, str], list[RunRecord]] = {}
    for record in fold_cross_validation(list(iter_records(results)) if records is None else records):
        if task is not None and record.task != task:
            continue
        groups.setdefault((record.task, record.model, record.data_kind), []).append(record)
    rows = []
    for (task_name, model, data_kind), records in groups.items():
        finished = [r for r in records if r.status in FINISHED]
        ranked = [r for r in finished if r.status == "completed" and r.test and r.metric in r.val]
        if not ranked:
            continue
        best = max(ranked, key=lambda r: (r.val[r.metric], -r.wall_time_s))
        row: dict[str, Any] = {
            "experiment": best.experiment,
            "task": task_name,
            "model": model,
            "data": data_kind,
            "n_trials": len(finished),
            "n_failed": sum(r.status == "failed" for r in records),
            "metric": best.metric,
        }
        # A multi-head run is shown by its selection head (train.metric's): its metrics fill the columns.
        head, _ = split_metric(best.metric)
        prefix = f"{head}/" if head else ""
        if head:
            row["head"] = head
        row.update({f"val/{m}": best.val.get(prefix + m) for m in METRICS})
        row.update({f"test/{m}": best.test.get(prefix + m) for m in METRICS})
        if best.cv:
            row["folds"] = best.cv["folds"]
            row.update({f"test/{m}_std": best.test.get(f"{prefix}{m}_std") for m in METRICS})
        row.update(
            {
                "params": best.params,
                "latency_ms": best.latency_ms,
                "best_epoch": best.best_epoch,
                "run_id": best.run_id,
                "searched": best.searched,
                "weights": best.weights,
            }
        )
        rows.append(row)
    rows.sort(key=lambda r: (r["task"], r["data"], -(r[f"val/{split_metric(r['metric'])[1]}"] or 0.0)))
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        from avbench.display import short_names

        names = short_names(value)
        return ", ".join(f"{names[k]}={_fmt(v)}" for k, v in value.items())
    if isinstance(value, int) and value >= 10_000:
        return f"{value / 1e6:.2f}M"
    return "" if value is None else str(value)


def _cell(row: dict[str, Any], column: str) -> str:
    std = row.get(f"{column}_std")
    return f"{row[column]:.4f} ± {std:.4f}" if std is not None else _fmt(row.get(column))


TABLE_COLUMNS = (
    "experiment",
    "task",
    "model",
    "data",
    "n_trials",
    "val/acc",
    "test/acc",
    "test/uar",
    "test/macro_f1",
    "params",
    "latency_ms",
    "searched",
)


def table_columns(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """TABLE_COLUMNS, with the selection head after `data` when some row is a multi-head run's."""
    if not any(row.get("head") for row in rows):
        return TABLE_COLUMNS
    at = TABLE_COLUMNS.index("data") + 1
    return (*TABLE_COLUMNS[:at], "head", *TABLE_COLUMNS[at:])


def render_markdown(rows: list[dict[str, Any]]) -> str:
    columns = table_columns(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row, c) for c in columns) + " |")
    return "\n".join(lines)


def render_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    columns = [c for c in rows[0] if c != "searched"] if rows else list(TABLE_COLUMNS)
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def render_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2)


def render_table(
    rows: list[dict[str, Any]], console, title: str = "avbench leaderboard (best validation run; test reported once)"
) -> None:
    from rich.table import Table

    table = Table(title=title)
    columns = table_columns(rows)
    for column in columns:
        table.add_column(
            column, justify="right" if column.startswith(("val", "test", "n_", "params", "latency")) else "left"
        )
    for row in rows:
        table.add_row(*(_cell(row, c) for c in columns))
    console.print(table)
