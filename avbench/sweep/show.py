"""`avbench show`: what a study found (the seed's print_tune_res), from the storage and the
run records: best trials with validation and test metrics, trials by state, parameter
importances, and PNG plots under results/studies/<study>/.

No torch here: a report on a finished sweep should start fast.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import click
import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from avbench.display import format_values
from avbench.errors import StorageError
from avbench.registry import did_you_mean
from avbench.results.layout import run_files, study_dir
from avbench.results.records import DamagedRecord, read_record
from avbench.spec import METRICS
from avbench.sweep.backends.optuna import is_infeasible, pareto_rows
from avbench.sweep.infeasible import INFEASIBLE
from avbench.sweep.space import plain_name
from avbench.sweep.storage import display_url, list_study_names, open_storage, resolve_storage_url, storage_file

TEST_METRICS = METRICS
PLOTS = ("optimization_history", "param_importances", "parallel_coordinate")


@dataclass
class StudyReport:
    study: optuna.Study
    name: str
    url: str
    experiment: str
    metric: str
    counts: dict[str, int]
    best: list[dict] = field(default_factory=list)
    importances: dict[str, float] = field(default_factory=dict)
    importance_note: str = ""
    failures: list[tuple[int, str]] = field(default_factory=list)
    infeasible: Counter = field(default_factory=Counter)  # reason → suggestions rejected for it
    objectives: tuple[str, ...] = ()  # several: the study's objectives, and `front` its Pareto front
    front: list[dict] = field(default_factory=list)


def _experiment_name(experiment: str) -> str:
    path = Path(experiment)
    return path.stem if path.suffix in (".yaml", ".yml", ".json") else experiment


def pick_study(names: list[str], experiment: str, requested: str | None, url: str) -> str:
    if requested is not None:
        if requested not in names:
            raise StorageError(f"no study '{requested}' in {display_url(url)}{did_you_mean(requested, names)}")
        return requested
    mine = [n for n in names if n == experiment or n.startswith(experiment + "-")]
    if len(mine) == 1:
        return mine[0]
    if not mine:
        raise StorageError(
            f"no study of {experiment} in {display_url(url)} (studies there: "
            f"{', '.join(names) or 'none'}); run `avbench sweep {experiment}` first"
        )
    raise StorageError(
        f"{len(mine)} studies of {experiment} in {display_url(url)}: {', '.join(mine)}; pick one with --study"
    )


def study_report(
    experiment: str, *, results: Path, study: str | None = None, storage: str | None = None, top: int = 5
) -> StudyReport:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    name = _experiment_name(experiment)
    url = resolve_storage_url(storage, results, name)
    path = storage_file(url)
    if path is not None and not path.exists():
        raise StorageError(f"no study storage at {path}; run `avbench sweep {name}` first or pass --storage")
    opened = open_storage(url)
    chosen = pick_study(list_study_names(opened), name, study, url)
    loaded = optuna.load_study(study_name=chosen, storage=opened)
    trials = loaded.get_trials(deepcopy=False)
    report = StudyReport(
        study=loaded,
        name=chosen,
        url=url,
        experiment=loaded.user_attrs.get("experiment", name),
        metric=loaded.user_attrs.get("metric", "val"),
        counts=dict(Counter(INFEASIBLE if is_infeasible(t) else t.state.name.lower() for t in trials)),
    )
    multi = len(loaded.directions) > 1
    maximize = loaded.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    completed = sorted(
        (t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.values[0], reverse=maximize
    )
    report.best = [_best_row(t, results, report.experiment) for t in completed[:top]]
    if multi:
        report.objectives = tuple(loaded.user_attrs.get("objectives") or (f"objective {i}" for i in range(2)))
        report.front = pareto_rows(loaded)
        report.metric = report.objectives[0]
    retried_as = {number: t.number for t in trials for number in t.system_attrs.get("retry_history", [])[-1:]}
    report.failures = [
        (t.number, t.user_attrs.get("error") or _died(retried_as.get(t.number)))
        for t in trials
        if t.state == TrialState.FAIL
    ]
    report.infeasible = Counter(t.user_attrs[INFEASIBLE] for t in trials if is_infeasible(t))
    report.importances, report.importance_note = _importances(loaded, len(completed))
    return report


def _died(retry: int | None) -> str:
    return "its worker died; " + (f"retried as trial {retry}" if retry is not None else "not retried")


def _best_row(trial: FrozenTrial, results: Path, experiment: str) -> dict:
    run_id = trial.user_attrs.get("run_id")
    params = {plain_name(k): v for k, v in trial.params.items()}  # a branch's keys as the fields they set
    row = {"trial": trial.number, "value": trial.values[0], "params": params, "run_id": run_id, "test": {}}
    if run_id:
        path = run_files(results, experiment, run_id).record
        try:
            record = read_record(path)
            row["test"] = {k: record.test[k] for k in TEST_METRICS if k in record.test}
            row["epochs"] = record.epochs_run
        except OSError:
            pass  # trained on another machine: its record lives there
        except DamagedRecord as exc:
            row["damaged"] = f"{path}: {exc.reason}"
    return row


def _importances(study: optuna.Study, completed: int) -> tuple[dict[str, float], str]:
    if completed < 2:
        return {}, "parameter importances need at least 2 completed trials"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # Optuna's default evaluator (PED-ANOVA) needs nothing beyond optuna itself.
            # The first objective ranks them when there are several; a parameter only some trials
            # draw (a branch's) is left out: PED-ANOVA needs every trial to have it.
            target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
            values = optuna.importance.get_param_importances(study, target=target)
        except (RuntimeError, ValueError) as exc:
            return {}, f"parameter importances unavailable: {exc}"
    note = "PED-ANOVA over completed trials" + (" (few trials: rough)" if completed < 10 else "")
    return dict(values), note


def render_report(report: StudyReport, console: Console) -> None:
    counts = ", ".join(f"{n} {state}" for state, n in sorted(report.counts.items())) or "no trials"
    # soft_wrap: a long storage path must not split the line a script greps
    console.print(f"study {report.name}: {counts} ({display_url(report.url)})", soft_wrap=True)
    if report.best:
        table = Table(title=f"best {len(report.best)} trial(s) by {report.metric}")
        for column in ("trial", report.metric, *(f"test/{m}" for m in TEST_METRICS), "params", "run"):
            table.add_column(column)
        for row in report.best:
            tests = [f"{row['test'][m]:.4f}" if m in row["test"] else "-" for m in TEST_METRICS]
            table.add_row(
                str(row["trial"]),
                f"{row['value']:.4f}",
                *tests,
                escape(format_values(row["params"])),
                row["run_id"] or "-",
            )
        console.print(table)
    if report.importances:
        shown = ", ".join(f"{name} {value:.2f}" for name, value in report.importances.items())
        console.print(f"parameter importances ({report.importance_note}): {shown}", soft_wrap=True)
    elif report.importance_note:
        console.print(report.importance_note)
    for number, error in report.failures:
        console.print(f"trial {number} failed: {escape(error)}", soft_wrap=True)
    if report.front:
        render_front(report.front, report.objectives, console)
    for reason, count in report.infeasible.most_common():
        console.print(f"{count} suggestion(s) skipped untrained, infeasible: {escape(reason)}", soft_wrap=True)
    for row in report.best:
        if row.get("damaged"):  # on stderr, so a script reading the table still gets it whole
            click.echo(f"skipped a damaged run record (no test metrics shown): {row['damaged']}", err=True)


def render_front(front: list[dict], objectives: tuple[str, ...], console: Console) -> None:
    """A multi-objective study's non-dominated trials: no other trial is as good in every objective."""
    table = Table(title=f"Pareto front: {len(front)} trial(s) no other trial beats on every objective")
    for column in ("trial", *objectives, "params", "run"):
        table.add_column(column)
    for row in front:
        shown = [f"{v:.4g}" for v in row["values"]]
        table.add_row(str(row["trial"]), *shown, escape(format_values(row["params"])), row["run_id"] or "-")
    console.print(table)


def write_plots(report: StudyReport, results: Path) -> list[Path]:
    """PNG plots of the study; the ones its trials cannot support yet are skipped."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    completed = len(report.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    wanted = [p for p in PLOTS if completed >= (2 if p == "param_importances" else 1)]
    multi = len(report.study.directions) > 1
    if multi and completed:
        wanted.insert(0, "pareto_front")
    out_dir = study_dir(results, report.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's matplotlib plots are "experimental"
        for plot in wanted:
            axes = _plot(optuna_plots, plot, report, multi)
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
            figure.set_size_inches(10, 6)
            path = out_dir / f"{plot}.png"
            figure.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(figure)
            written.append(path)
    return written


def _plot(optuna_plots, plot: str, report: StudyReport, multi: bool):
    """One optuna plot; with several objectives the Pareto front of the first two, the others of the first."""
    draw = getattr(optuna_plots, f"plot_{plot}")
    if plot == "pareto_front":
        return draw(report.study, target_names=list(report.objectives), targets=lambda t: tuple(t.values[:2]))
    if multi:
        return draw(report.study, target=lambda t: t.values[0], target_name=report.objectives[0])
    return draw(report.study)
