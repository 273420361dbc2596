"""Best run per (task, model, kind of data), chosen on validation and reported on test as a
distribution over its replicates.

Reads only results/runs/*/*/record.json: no torch, no network. Synthetic or shuffled-label
runs are never ranked together with runs on real data. Each row (a dict; the same keys in
every --format) holds:

    experiment, task, model, data, head   what the row is (head: a multi-head run's selection head)
    n_trials, n_failed                    the original runs of the group (replicates not counted)
    selection, tie_broken                 how the run was chosen (results.selection): "best val/acc of 4"
    val/<m>                               the chosen run's validation metrics
    test/<m>                              the MEAN test metric over n_runs runs: the chosen run and its
                                          replicates (seeds; folds × seeds with folds)
    test/<m>_std, test/<m>_ci95           their sample std and Student t 95 % interval [low, high];
                                          None for one run (no interval is invented), except a run that
                                          cross-validated inside itself (auDeep) keeps its folds' std
    n_runs, folds                         the n of the interval; folds of a `run --cv` group
    tied                                  this row's interval (its mean, for one run) overlaps the top
                                          row's of its (task, data) board, on the selection metric
    chance, majority                      1 / classes and the majority class's share of the test split
    is_control                            a shuffled-train-labels control row
    control_test, control_ci95            on a real row: its control's mean (and interval), if one ran
    beats_control                         the row's mean is above its control's interval (its mean for
                                          one run); False is flagged; None without a control
    control_separated                     the row's whole interval (its mean, for one run) is above the
                                          control's: only then does the row say it beats its control
    params, best_epoch, run_id, searched, weights
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path
from typing import Any

from avbench.results.records import FINISHED, RunRecord, iter_records
from avbench.results.selection import Selection, select
from avbench.results.stats import overlaps, t_interval
from avbench.spec import METRICS, split_metric

CONTROL_SUFFIX = ", shuffled train labels"  # what avbench.preflight appends to a control's data kind


def fold_cross_validation(records: list[RunRecord]) -> tuple[list[RunRecord], dict[str, list[RunRecord]]]:
    """Replace the folds of each cross-validation by one record holding their means, complete
    only when every fold completed: a CV is one result, not n. Also returns the completed
    folds of each group (its run id), whose scores are the samples of its interval. A record
    whose `cv` has no fold already covers every fold (an auDeep run) and stays."""
    plain = [r for r in records if not r.cv or r.cv.get("fold") is None]
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        if record.cv and record.cv.get("fold") is not None:
            groups.setdefault(record.cv["group"], []).append(record)
    done_folds: dict[str, list[RunRecord]] = {}
    for group, folds in groups.items():
        first = folds[0]
        done = [r for r in folds if r.status == "completed"]
        merged = RunRecord.from_dict({**first.__dict__, "run_id": group, "cv": {**first.cv, "fold": None}})
        if len(done) < first.cv["folds"]:
            merged.status = "failed" if any(r.status == "failed" for r in folds) else "running"
        else:
            merged.status = "completed"
            done_folds[group] = done
            for split in ("val", "test"):
                values = {m: [getattr(r, split)[m] for r in done] for m in METRICS}
                setattr(merged, split, {m: statistics.fmean(v) for m, v in values.items()})
        plain.append(merged)
    return plain, done_folds


def leaderboard_rows(
    results: Path, task: str | None = None, records: list[RunRecord] | None = None
) -> list[dict[str, Any]]:
    """One row per (task, model, kind of data); `records` when the caller already read them."""
    merged, folds = fold_cross_validation(list(iter_records(results)) if records is None else records)
    groups: dict[tuple[str, str, str], list[RunRecord]] = {}
    for record in merged:
        if task is None or record.task == task:
            groups.setdefault((record.task, record.model, record.data_kind), []).append(record)
    rows = []
    for (task_name, model, data_kind), group in groups.items():
        selection = select(group)
        if selection is not None:
            rows.append(_row(task_name, model, data_kind, group, selection, folds))
    _attach_controls(rows)
    _mark_ties(rows)
    rows.sort(key=lambda r: (r["task"], r["data"], -(_mean(r) or 0.0)))
    return rows


def _samples(selection: Selection, folds: dict[str, list[RunRecord]]) -> list[dict]:
    """The test metrics of every run behind the row: each fold of a CV group, each replicate."""
    tests = []
    for run in selection.runs:
        tests.extend(r.test for r in folds[run.run_id]) if run.run_id in folds else tests.append(run.test)
    return tests


def _row(task: str, model: str, data_kind: str, group: list, selection: Selection, folds: dict) -> dict[str, Any]:
    best = selection.best
    originals = [r for r in group if r.replicate_of is None]
    head, _ = split_metric(best.metric)
    prefix = f"{head}/" if head else ""
    samples = _samples(selection, folds)
    row: dict[str, Any] = {
        "experiment": best.experiment,
        "task": task,
        "model": model,
        "data": data_kind,
        "n_trials": sum(r.status in FINISHED for r in originals),
        "n_failed": sum(r.status == "failed" for r in originals),
        "metric": best.metric,
        "selection": selection.how,
        "tie_broken": selection.tie_broken,
        "n_runs": len(samples),
    }
    if head:
        row["head"] = head
    row.update({f"val/{m}": best.val.get(prefix + m) for m in METRICS})
    for m in METRICS:
        values = [test[prefix + m] for test in samples if isinstance(test.get(prefix + m), int | float)]
        interval = t_interval(values) if values else None
        row[f"test/{m}"] = interval.mean if interval else None
        row[f"test/{m}_ci95"] = list(interval.ci95) if interval and interval.ci95 else None
        own_folds = best.test.get(f"{prefix}{m}_std") if len(samples) == 1 else None  # auDeep's inner folds
        row[f"test/{m}_std"] = interval.std if interval and interval.std is not None else own_folds
    if best.cv:
        row["folds"] = best.cv["folds"]
    row.update(_baselines(best))
    row.update(
        {
            "is_control": data_kind.endswith(CONTROL_SUFFIX),
            "params": best.params,
            "latency_ms": best.latency_ms,
            "best_epoch": best.best_epoch,
            "run_id": best.run_id,
            "searched": best.searched,
            "weights": best.weights,
        }
    )
    return row


def _baselines(record: RunRecord) -> dict[str, float | None]:
    """Chance (1 / classes) and majority-class accuracy, from the test split's class counts."""
    counts = record.test_class_counts
    if not counts or not sum(counts):
        return {"chance": None, "majority": None}
    return {"chance": 1.0 / len(counts), "majority": max(counts) / sum(counts)}


def _base(row: dict[str, Any]) -> str:
    return split_metric(row["metric"])[1]


def _mean(row: dict[str, Any]) -> float | None:
    return row.get(f"test/{_base(row)}")


def _attach_controls(rows: list[dict[str, Any]]) -> None:
    """Each real row gets its shuffled-label control's score, and whether it beats it."""
    controls = {(r["task"], r["model"], r["data"].removesuffix(CONTROL_SUFFIX)): r for r in rows if r["is_control"]}
    for row in rows:
        row.update({"control_test": None, "control_ci95": None, "beats_control": None, "control_separated": None})
        control = controls.get((row["task"], row["model"], row["data"])) if not row["is_control"] else None
        if control is None or _mean(control) is None or _mean(row) is None:
            continue
        metric = _base(row)
        ceiling = (control[f"test/{metric}_ci95"] or [_mean(control)] * 2)[1]
        row.update(
            {
                "control_test": _mean(control),
                "control_ci95": control[f"test/{metric}_ci95"],
                "beats_control": _mean(row) > ceiling,
                "control_separated": (row[f"test/{metric}_ci95"] or [_mean(row)])[0] > ceiling,
            }
        )


def _mark_ties(rows: list[dict[str, Any]]) -> None:
    """`tied`: the row's interval overlaps the top row's of its (task, data) board."""
    boards: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        row["tied"] = False
        if _mean(row) is not None:
            boards.setdefault((row["task"], row["data"]), []).append(row)
    for board in boards.values():
        top = max(board, key=_mean)
        for row in board:
            if row is not top:
                metric = _base(row)
                row["tied"] = overlaps(row[f"test/{metric}_ci95"], top[f"test/{metric}_ci95"], _mean(row), _mean(top))


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
    """A test metric as mean ± the 95 % interval's half-width (n runs), else the one value."""
    if column == "notes":
        return "; ".join(row_notes(row))
    ci95, std = row.get(f"{column}_ci95"), row.get(f"{column}_std")
    if ci95 is not None:
        return f"{row[column]:.4f} ± {(ci95[1] - ci95[0]) / 2:.4f}"
    if std is not None:  # one run that cross-validated inside itself: its folds' std
        return f"{row[column]:.4f} (sd {std:.4f})"
    return _fmt(row.get(column))


def row_notes(row: dict[str, Any]) -> list[str]:
    """What a reader must know about the row's numbers, in words."""
    notes = []
    if row.get("is_control"):
        notes.append("control: shuffled train labels")
    if row.get("n_runs") == 1:
        notes.append("1 run: no interval")
    if row.get("tied"):
        notes.append("tied with the top row")
    if row.get("tie_broken"):
        notes.append("val tie broken by val/loss")
    if row.get("beats_control") is False:
        notes.append(f"DOES NOT BEAT ITS CONTROL ({row['control_test']:.4f})")
    elif row.get("control_separated"):
        notes.append(f"beats its control ({row['control_test']:.4f})")
    elif row.get("beats_control"):
        notes.append(f"above its control ({row['control_test']:.4f}) but the intervals overlap")
    return notes


TABLE_COLUMNS = (
    "experiment",
    "task",
    "model",
    "data",
    "n_trials",
    "n_runs",
    "val/acc",
    "test/acc",
    "test/uar",
    "test/macro_f1",
    "chance",
    "majority",
    "notes",
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
    every = [c for row in rows for c in row] if rows else [c for c in TABLE_COLUMNS if c != "notes"]
    columns = [c for c in dict.fromkeys(every) if c != "searched"]
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def render_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2)


TABLE_TITLE = "avbench leaderboard (val-selected config; test: mean ± 95 % CI half-width over n_runs)"


def render_table(rows: list[dict[str, Any]], console, title: str = TABLE_TITLE) -> None:
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
