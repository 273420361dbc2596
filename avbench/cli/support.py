"""What every `avbench` command shares: the console, the results folder, the run options."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

FILE = click.Path(dir_okay=False, path_type=Path)  # a file argument that may not exist yet
FOLDER = click.Path(file_okay=False, path_type=Path)


def make_console():
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        # Logs and pipes: do not squeeze tables (the leaderboard has ~15 columns) into 80 columns.
        console = Console(highlight=False, width=240)
    return console


def results_dir(ctx: click.Context) -> Path:
    return ctx.obj["results"]


def common_run_options(func):
    return click.argument("experiment")(_run_options(func))


def grid_run_options(func):
    """The run options with EXPERIMENT optional: `--task`/`--model` may name many instead."""
    return click.argument("experiment", required=False)(_run_options(func))


def _run_options(func):
    func = click.option(
        "--strict", is_flag=True, help="Stop at the first bad data file (sets data.strict) instead of skipping it."
    )(func)
    func = click.option("--no-wandb", is_flag=True, help="Do not log to Weights & Biases.")(func)
    func = click.option(
        "--init-from",
        type=click.Path(path_type=Path),
        default=None,
        metavar="CHECKPOINT",
        help="Start from this checkpoint's weights (sets train.init_from; see train.init_skip_keys).",
    )(func)
    func = click.option("--synthetic", is_flag=True, help="Use the task's synthetic stand-in (written on first use).")(
        func
    )
    func = click.option("--preset", default=None, help="A named override set from the experiment's presets.")(func)
    func = click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override a field, e.g. --set train.lr=3e-4 (repeatable).",
    )(func)
    return func


def with_strict(overrides: tuple[str, ...], strict: bool) -> tuple[str, ...]:
    return (*overrides, "data.strict=true") if strict else overrides


def schema_default(dotted: str) -> Any:
    """The experiment schema's default for a field such as "evaluation.lr" (lists as tuples,
    as click's multiple options hold them)."""
    from avbench.config import Experiment

    model: Any = Experiment
    *sections, name = dotted.split(".")
    for section in sections:
        model = model.model_fields[section].annotation
    default = model.model_fields[name].get_default(call_default_factory=True)
    return tuple(default) if isinstance(default, list) else default


def count_option(*decls: str, **options: Any):
    """An option that takes a whole number of at least 1 (trials, workers, threads, …); its
    default, when it has one, shows in --help."""
    return click.option(*decls, type=click.IntRange(min=1), show_default=options.get("default") is not None, **options)


def schema_option(*decls: str, field: str, **options: Any):
    """An option whose default is the schema's `field` (see SchemaDefault)."""
    return click.option(*decls, cls=SchemaDefault, field=field, **options)


class SchemaDefault(click.Option):
    """An option whose default is the schema's (`field="data.fold"`), so the two never differ.
    Read only when a command parses or shows its help: `avbench --help` stays without pydantic."""

    def __init__(self, *decls: str, field: str, **kwargs: Any):
        super().__init__(*decls, show_default=True, **kwargs)
        self.schema_field = field

    def get_default(self, ctx: click.Context, call: bool = True) -> Any:
        return schema_default(self.schema_field)


def with_init_from(overrides: tuple[str, ...], checkpoint: Path | None) -> tuple[str, ...]:
    """--init-from as the override it stands for; absolute, so workers elsewhere find the file,
    and quoted, so a path that looks like a number stays a string."""
    if checkpoint is None:
        return overrides
    return (*overrides, f"train.init_from={json.dumps(str(checkpoint.resolve()))}")
