"""Commands about which experiments exist: `list experiments [--matrix]`, `new`, and
`sweep --task/--model` (every experiment of a row or column of the grid, in turn)."""

from __future__ import annotations

import click

from avbench.cli.support import make_console
from avbench.errors import AvbenchError


def list_experiment_files() -> None:
    """Each experiment file with where it comes from; a file that hides another says so."""
    from avbench.catalog import experiment_files

    entries = experiment_files()
    width = max((len(entry.name) for entry in entries), default=10) + 2
    click.echo(f"{'experiment':<{width}}from")
    for entry in entries:
        shadow = f" (shadows {entry.shadows})" if entry.shadows else ""
        click.echo(f"{entry.name:<{width}}{entry.origin}{shadow}")
    click.echo(
        "every other compatible <model>-<task> is derived from its model and task: avbench list experiments --matrix"
    )


CELL_TEXT = {"file": "tuned file", "derived": "derived"}


def list_matrix() -> None:
    """The models × tasks grid: a tuned file (and where), derived, or why incompatible."""
    from rich.table import Table

    from avbench.derived import matrix
    from avbench.registry import TASKS

    cells = matrix()
    tasks = TASKS.names()
    table = Table("model", *tasks, show_lines=True, title="experiments: models × tasks")
    by_model: dict[str, list[str]] = {}
    for cell in cells:
        text = f"✗ {cell.detail}" if cell.kind == "incompatible" else CELL_TEXT[cell.kind]
        if cell.kind == "file" and cell.detail != "built-in":
            text += f" ({cell.detail})"
        by_model.setdefault(cell.model, []).append(text)
    for model, row in by_model.items():
        table.add_row(model, *row)
    console = make_console()
    console.print(table)
    counts = {kind: sum(cell.kind == kind for cell in cells) for kind in ("file", "derived", "incompatible")}
    console.print(
        f"{counts['file']} from files, {counts['derived']} derived, {counts['incompatible']} incompatible; "
        "a derived experiment runs by its name, e.g. avbench sweep <model>-<task> --preset tiny --synthetic"
    )


@click.command()
@click.argument("experiment")
@click.option("--model", required=True, help="A registered model (avbench list models).")
@click.option("--task", required=True, help="A registered task (avbench list tasks).")
def new(experiment: str, model: str, task: str) -> None:
    """Write a starter EXPERIMENT (and its sweep file) into ./experiments and ./sweeps."""
    from avbench.starter import write_starter

    written = write_starter(experiment, model=model, task=task)
    click.echo(f"wrote {written.experiment} and {written.sweep}: searches {', '.join(written.searched)}")
    click.echo(f"next: avbench sweep {experiment} --preset tiny --synthetic")


def sweep_grid(
    ctx: click.Context, command: click.Command, *, experiment: str | None, task: str | None, model: str | None
) -> None:
    """Sweep every experiment of a row (--model) or column (--task) in turn, with the options
    given. Each experiment keeps its own study, so re-running the command resumes it: finished
    experiments run no new trials. One that cannot run is reported and the others go on."""
    from avbench.derived import experiments_of

    if experiment is not None:
        raise click.UsageError("give EXPERIMENT or --task / --model, not both")
    if task is None and model is None:
        raise click.UsageError("missing EXPERIMENT (or --task / --model for many)")
    if ctx.params.get("sweep_config"):
        raise AvbenchError("--sweep-config names one experiment's ranges: drop it with --task/--model")
    names = experiments_of(task=task, model=model)
    console = make_console()
    console.print(f"benchmark: {len(names)} experiment(s): {', '.join(names)}", soft_wrap=True)
    problems: list[str] = []
    for number, name in enumerate(names, 1):
        console.rule(f"{number}/{len(names)} {name}")
        params = {**ctx.params, "experiment": name, "grid_task": None, "grid_model": None}
        try:
            ctx.invoke(command, **params)
        except AvbenchError as exc:
            problems.append(name)
            console.print(f"{name}: not swept: {exc}", soft_wrap=True)
    if problems:
        raise AvbenchError(f"{len(problems)} of {len(names)} experiment(s) not swept: {', '.join(problems)}")
