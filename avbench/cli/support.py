"""What every `avbench` command shares: the console, the results folder, the run options."""

from __future__ import annotations

from pathlib import Path

import click


def make_console():
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        # Logs and pipes: do not squeeze tables into 80 columns.
        console = Console(highlight=False, width=160)
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
