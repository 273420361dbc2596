"""`avbench report`: one self-contained static HTML page of what results/ holds, for a team
that has no W&B at hand (commit it, attach it to a CI run).

Per task the leaderboard (every column its rows carry, so fields added to the rows show up
without change here) with its test scores as bars, 95 % CIs as error bars where the rows carry
them and controls (shuffled labels) in grey beside the real rows; per experiment the study's
optimisation history and parameter importances (`avbench show`'s) and the val-selected run's
test confusion matrix; provenance of every row. Charts are inline SVG: no script, font or
image is fetched when the page is viewed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from avbench.errors import AvbenchError
from avbench.results import svg
from avbench.results.compare import BoardPair, board_comparisons
from avbench.results.layout import report_dir, run_files
from avbench.results.leaderboard import leaderboard_rows
from avbench.results.provenance import git_hash, versions
from avbench.results.records import DamagedRecord, RunRecord, read_record
from avbench.spec import split_metric

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;font-size:13px;margin:.5em 0 1em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f0f0f0} tr.control td{color:#777} h2{border-bottom:2px solid #3b6fb6}
.note{color:#666;font-size:13px} .scroll{overflow-x:auto}
"""
SKIPPED_COLUMNS = {"searched"}  # shown per experiment, not in the board


@dataclass
class ExperimentSection:
    experiment: str
    data: str = ""  # the row's kind of data: an experiment has a row per kind (real, control, …)
    history: list[tuple[int, float]] = field(default_factory=list)
    importances: dict[str, float] = field(default_factory=dict)
    study_note: str = ""
    confusion: list[list[int]] | None = None
    classes: list[str] = field(default_factory=list)
    record: RunRecord | None = None


def write_report(results: Path, out: Path | None = None) -> Path:
    """Write the page (index.html under `out`, by default results/report/) and return its path."""
    rows = leaderboard_rows(results)
    if not rows:
        raise AvbenchError(f"no completed run under {results}; run `avbench run` or `avbench sweep` first")
    sections = [_experiment_section(results, row) for row in rows]
    pairs = board_comparisons(results, rows)
    folder = Path(out) if out is not None else report_dir(results)
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / "index.html"
    page.write_text(render_page(rows, sections, pairs), encoding="utf-8")
    return page


def _experiment_section(results: Path, row: dict[str, Any]) -> ExperimentSection:
    section = ExperimentSection(row["experiment"], row["data"])
    try:
        section.record = read_record(run_files(results, row["experiment"], row["run_id"]).record)
    except (OSError, DamagedRecord):
        section.record = None  # a cross-validation row stands for several records
    if section.record is not None:
        head, _ = split_metric(section.record.metric)
        section.confusion = section.record.test.get(f"{head}/confusion" if head else "confusion")
        section.classes = _class_names(row["task"], len(section.confusion or []))
    _add_study(results, section)
    return section


def _class_names(task: str, count: int) -> list[str]:
    """The task's class names when it has fixed ones of the right number, else class numbers."""
    from avbench.registry import TASKS

    try:
        names = list(getattr(TASKS.get(task), "classes", ()))
    except AvbenchError:
        names = []
    return names if len(names) == count else [str(i) for i in range(count)]


def _add_study(results: Path, section: ExperimentSection) -> None:
    """The optimisation history and importances of the study the selected run came from, if any."""
    record = section.record
    if record is None or record.sweep is None:
        section.study_note = "not from a sweep: no optimisation history"
        return
    from avbench.sweep.show import study_report

    try:
        report = study_report(section.experiment, results=results, study=record.sweep)
    except AvbenchError as exc:
        section.study_note = str(exc)
        return
    section.history = [
        (t.number, float(t.value)) for t in report.study.get_trials(deepcopy=False) if t.value is not None
    ]
    section.importances, section.study_note = report.importances, report.importance_note


def render_page(
    rows: list[dict[str, Any]], sections: list[ExperimentSection], pairs: list[BoardPair] | None = None
) -> str:
    tasks = list(dict.fromkeys(row["task"] for row in rows))
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>avbench report</title>",
        f"<style>{STYLE}</style></head><body><h1>avbench report</h1>",
        f"<p class='note'>written {datetime.now(UTC).isoformat(timespec='seconds')} from {len(rows)} "
        f"leaderboard row(s); avbench code {escape(git_hash() or 'not in git')}</p>",
    ]
    for task in tasks:
        parts.append(_task_html(task, [row for row in rows if row["task"] == task]))
    parts.append("<h2>Experiments</h2>")
    parts.extend(_section_html(section) for section in sections)
    parts.append(_comparisons_html(pairs or []))
    parts.append(_provenance_html(rows, sections))
    parts.append("</body></html>")
    return "\n".join(parts)


def is_control(row: dict[str, Any]) -> bool:
    return bool(row.get("control")) or "shuffled" in str(row.get("data", ""))


def _task_html(task: str, rows: list[dict[str, Any]]) -> str:
    metric = split_metric(rows[0]["metric"])[1]
    bars = [
        {
            "label": f"{row['experiment']} ({row['data']})",
            "value": row.get(f"test/{metric}") or 0.0,
            "ci95": row.get(f"test/{metric}_ci95"),
            "control": is_control(row),
        }
        for row in rows
    ]
    chart = svg.bar_chart(bars, title=f"{task}: test {metric}")
    columns = [c for c in dict.fromkeys(key for row in rows for key in row) if c not in SKIPPED_COLUMNS]
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        f"<tr class='{'control' if is_control(row) else 'real'}'>"
        + "".join(f"<td>{escape(_cell(row.get(c)))}</td>" for c in columns)
        + "</tr>"
        for row in rows
    )
    return (
        f"<h2 id='task-{escape(task)}'>Task {escape(task)}</h2>"
        f"<p class='note'>test {metric} of the val-selected run of each experiment; bars in grey are "
        f"controls; whiskers are 95 % CIs where the rows have them</p>{chart}"
        f"<div class='scroll'><table class='board'><tr>{head}</tr>{body}</table></div>"
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (list, tuple)) and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(f"{v:.4f}" for v in value) + "]"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def _section_html(section: ExperimentSection) -> str:
    parts = [f"<h3>{escape(section.experiment)} <span class='note'>({escape(section.data)})</span></h3>"]
    if section.history:
        parts.append(svg.history_chart(section.history, title=f"{section.experiment}: optimisation history"))
    if section.importances:
        bars = [{"label": name, "value": value} for name, value in section.importances.items()]
        parts.append(svg.bar_chart(bars, title=f"{section.experiment}: parameter importances"))
    if section.study_note:
        parts.append(f"<p class='note'>{escape(section.study_note)}</p>")
    if section.confusion:
        title = f"{section.experiment}: test confusion matrix (rows: true class)"
        parts.append(svg.confusion_chart(section.confusion, section.classes, title=title))
    elif section.record is None:
        parts.append("<p class='note'>cross-validated: one confusion matrix per fold, in the fold records</p>")
    return "\n".join(parts)


def _comparisons_html(pairs: list[BoardPair]) -> str:
    """The leader of each board against every other row, paired on the same test clips."""
    header = (
        "<tr><th>task</th><th>data</th><th>A (top row)</th><th>B</th><th>metric</th><th>A − B</th>"
        "<th>95 % CI</th><th>McNemar p</th><th>clips</th><th>runs A / B</th></tr>"
    )
    lines = []
    for pair in pairs:
        cells = [pair.task, pair.data, pair.leader, pair.other]
        found = pair.comparison
        if found is None:
            row = "".join(f"<td>{escape(c)}</td>" for c in cells)
            lines.append(f"<tr class='unpaired'>{row}<td colspan='6'>not paired: {escape(pair.refused)}</td></tr>")
            continue
        low, high = found.ci95
        cells += [found.metric, f"{found.difference:+.4f}", f"[{low:+.4f}, {high:+.4f}]", f"{found.p_value:.4g}"]
        cells += [str(found.n_clips), f"{found.a.runs} / {found.b.runs}"]
        lines.append("<tr class='paired'>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    body = f"<table class='comparisons'>{header}{''.join(lines)}</table>" if lines else ""
    note = (
        "each board's top row against every other real row on the same test clips, as `avbench compare` "
        "computes it: the difference of the means over replicates, its paired bootstrap 95 % CI (clips "
        "resampled) and McNemar's exact p on the two selected runs' accuracy"
    )
    empty = "" if lines else "<p class='note'>no board has two experiments to compare</p>"
    return f"<h2 id='comparisons'>Paired comparisons</h2><p class='note'>{note}</p>{body}{empty}"


def _provenance_html(rows: list[dict[str, Any]], sections: list[ExperimentSection]) -> str:
    header = "<tr><th>experiment</th><th>run</th><th>data</th><th>git</th><th>weights</th><th>versions</th></tr>"
    lines = []
    for row, section in zip(rows, sections, strict=True):
        record = section.record
        shown = ", ".join(f"{k} {v}" for k, v in (record.versions if record else {}).items())
        cells = (row["experiment"], row["run_id"], row["data"], record.git if record else "", row.get("weights"), shown)
        lines.append("<tr>" + "".join(f"<td>{escape(_cell(c))}</td>" for c in cells) + "</tr>")
    here = ", ".join(f"{k} {v}" for k, v in versions().items())
    return (
        f"<h2>Provenance</h2><table class='provenance'>{header}{''.join(lines)}</table>"
        f"<p class='note'>this page was written with {escape(here)}</p>"
    )
