"""The `avbench` command. Each command parses, calls one library function and renders.

Heavy libraries (torch, optuna, wandb) are imported inside the commands that need them, so
`avbench --help` and `avbench leaderboard` start in a fraction of a second.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from avbench import heap
from avbench.cli.audeep import features
from avbench.cli.boundary import BoundaryGroup
from avbench.cli.cache import cache
from avbench.cli.catalog import list_experiment_files, list_matrix, new
from avbench.cli.data import data
from avbench.cli.imports import import_group, pipeline
from avbench.cli.replicate import replicate
from avbench.cli.report import report
from avbench.cli.stats import compare, control
from avbench.cli.support import (
    common_run_options,
    make_console,
    results_dir,
    with_init_from,
    with_strict,
)
from avbench.cli.sweep import agent_trial, show, sweep
from avbench.cli.wandb_cmds import log_leaderboard_rows, sync
from avbench.errors import AvbenchError
from avbench.results.layout import run_files, runs_root

heap.collect_less_often()  # before the heavy imports inside the commands (torch, optuna, wandb)


@click.group(cls=BoundaryGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--results",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="AVBENCH_RESULTS",
    default=Path("results"),
    show_default=True,
    help="Where run records, studies and caches go.",
)
@click.option(
    "--experiments",
    "experiment_dirs",
    multiple=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A project folder (holding experiments/ and sweeps/) searched after ./experiments and before "
    "$AVBENCH_EXPERIMENTS and the built-ins (repeatable).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors (or AVBENCH_DEBUG=1).")
@click.version_option(package_name="avbench")
@click.pass_context
def cli(ctx: click.Context, results: Path, experiment_dirs: tuple[Path, ...], debug: bool) -> None:
    """Benchmark harness and sweep orchestrator for audio and audio-visual classification."""
    ctx.obj = {"results": results}
    if experiment_dirs:
        _prepend_experiment_dirs(ctx, experiment_dirs)


def _prepend_experiment_dirs(ctx: click.Context, dirs: tuple[Path, ...]) -> None:
    """--experiments travels in AVBENCH_EXPERIMENTS, so worker processes search the same
    folders; restored when the command ends (the CLI may run in-process, as in tests)."""
    import os

    from avbench.catalog import PATH_ENV

    before = os.environ.get(PATH_ENV)
    os.environ[PATH_ENV] = os.pathsep.join([*(str(d.resolve()) for d in dirs), *([before] if before else [])])

    def restore() -> None:
        if before is None:
            os.environ.pop(PATH_ENV, None)
        else:
            os.environ[PATH_ENV] = before

    ctx.call_on_close(restore)


@cli.command("list")
@click.argument("what", type=click.Choice(["experiments", "tasks", "models"]))
@click.option(
    "--matrix", is_flag=True, help="experiments: the models × tasks grid (tuned file, derived, incompatible)."
)
def list_cmd(what: str, matrix: bool) -> None:
    """List experiments (and where each comes from), tasks or models."""
    if matrix and what != "experiments":
        raise click.UsageError("--matrix goes with `list experiments`")
    if what == "models":
        _list_models()
    elif what == "experiments":
        list_matrix() if matrix else list_experiment_files()
    else:
        from avbench.registry import TASKS

        for name in TASKS.names():
            click.echo(name)


def _list_models() -> None:
    from rich.table import Column, Table
    from rich.text import Text

    from avbench.model_info import describe_models, format_count

    # One line per model: only the summary gives way to a narrow terminal, and it is cut, not wrapped.
    fixed = [Column(name, no_wrap=True) for name in ("model", "modalities", "params", "counted in")]
    table = Table(*fixed, "what it is", box=None)
    for info in describe_models():
        reads = " + ".join(f"audio ({info.audio_input})" if m == "audio" else m for m in info.modalities)
        table.add_row(
            info.name,
            reads,
            format_count(info.params),
            info.counted_in or "-",
            Text(info.summary, no_wrap=True, overflow="ellipsis"),
        )
    make_console().print(table)


@cli.command()
@click.argument("experiments", nargs=-1)
def validate(experiments: tuple[str, ...]) -> None:
    """Check experiment files: schema, registry names, model args and search space."""
    from avbench.catalog import list_experiments, load_experiment
    from avbench.preflight import check_model_args, check_weights
    from avbench.registry import TASKS
    from avbench.sweep.space import resolve_space

    names = experiments or tuple(list_experiments())
    problems = 0
    for name in names:
        try:
            loaded = load_experiment(name)
            TASKS.get(loaded.config.task)
            check_model_args(loaded.config)
            check_weights(loaded.config)
            space = resolve_space(loaded) if loaded.searched else None
        except AvbenchError as exc:
            problems += 1
            click.echo(f"✗ {name}: {exc}")
            continue
        searched = f"searches {', '.join(space.params)}" if space else "nothing searched"
        click.echo(f"✓ {name}: {searched}")
    if problems:
        raise click.ClickException(f"{problems} of {len(names)} experiment(s) have problems")


@cli.command()
@common_run_options
@click.option(
    "--cv", is_flag=True, help="Cross-validate over the task's folds (esc50, esc10; data.folds speaker folds)."
)
@click.pass_context
def run(ctx, experiment, overrides, preset, synthetic, no_wandb, init_from, strict, cv) -> None:
    """Train and evaluate one experiment once (every field must have a value)."""
    from avbench.catalog import load_experiment
    from avbench.display import feature_progress, summarize

    overrides = with_init_from(with_strict(overrides, strict), init_from)
    loaded = load_experiment(experiment, preset=preset, overrides=overrides)
    if loaded.searched:
        raise AvbenchError(
            f"{loaded.name} has searched (null) fields: {', '.join(loaded.searched)}; "
            "give them values with --set KEY=VALUE or run `avbench sweep`"
        )
    from avbench.context import RunContext
    from avbench.recipes import run_recipe

    config = loaded.resolve({})
    run_ctx = RunContext(results_dir(ctx), synthetic=synthetic, use_wandb=not no_wandb, preset=preset)
    if cv:
        _cross_validate(loaded.name, config, run_ctx)
        return
    from avbench.cli.epochs import EpochReport, device_line, summary_lines
    from avbench.distributed import join_ranks

    console = make_console()
    main_rank = join_ranks().is_main  # under torchrun every rank trains; rank 0 speaks for them
    report = EpochReport(console, config.train.epochs, header=f"{loaded.name}: {device_line(config)}")
    with feature_progress(console) as on_features, report as on_epoch:
        record = run_recipe(
            config,
            run_ctx,
            on_eval=on_epoch if main_rank else None,
            progress=on_features if main_rank else None,
        )
    if main_rank:
        for line in summary_lines(record, on_epoch.history):
            console.print(line)
        console.print(f"{loaded.name} {record.run_id}: {summarize(record)}")
        click.echo(f"record: {run_files(results_dir(ctx), loaded.name, record.run_id).record}")
    if record.status == "failed":
        sys.exit(1)


@cli.command()
@common_run_options
@click.pass_context
def embed(ctx, experiment, overrides, preset, synthetic, no_wandb, init_from, strict) -> None:
    """Precompute an experiment's cached features (a probe's encoder embeddings), with a progress bar."""
    del init_from  # a warm start changes the trained weights, never the cached features
    from avbench.catalog import load_experiment
    from avbench.context import RunContext
    from avbench.display import feature_progress
    from avbench.recipes.embed import precompute_features

    loaded = load_experiment(experiment, preset=preset, overrides=with_strict(overrides, strict))
    # Training fields never change the features, so their searched values may stay open.
    open_inputs = [key for key in loaded.searched if key.split(".")[0] not in ("train", "sweep", "evaluation")]
    if open_inputs:
        raise AvbenchError(
            f"{loaded.name}: {', '.join(open_inputs)} change the features; embed fills one setting, "
            "so give them values with --set KEY=VALUE"
        )
    config = loaded.config
    console = make_console()
    with feature_progress(console) as on_features:
        done = precompute_features(config, RunContext(results_dir(ctx), synthetic=synthetic), on_features)
    cache = done.cache
    console.print(
        f"{loaded.name} ({done.data_kind}): {sum(done.sizes.values())} clips "
        f"({', '.join(f'{k} {v}' for k, v in done.sizes.items())}); computed {cache['decoded']}, "
        f"already cached {cache['hits']}, failed {cache['failed']}"
    )
    for path, reason in done.skipped[:5]:
        console.print(f"skipped {path}: {reason}")
    click.echo(f"cache: {done.where}")


def _cross_validate(name: str, config, run_ctx) -> None:
    from avbench.crossval import fold_count, run_cross_validation
    from avbench.display import summarize
    from avbench.results.records import new_run_id

    console = make_console()
    folds = fold_count(config.task, config.data)
    group = f"cv-{new_run_id()}"
    console.print(f"{name}: {folds}-fold cross-validation ({group})")
    outcome = run_cross_validation(
        config,
        run_ctx,
        group=group,
        on_fold_end=lambda fold, record: console.print(f"fold {fold}: {summarize(record)}"),
    )
    for split in ("val", "test"):
        shown = ", ".join(f"{split}/{m}={mean:.4f} ± {std:.4f}" for m, (mean, std) in outcome.summary(split).items())
        console.print(shown or f"no fold completed ({split})")
    if any(r.status == "failed" for r in outcome.records):
        sys.exit(1)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "md", "csv", "json"]), default="table", show_default=True)
@click.option("--task", default=None, help="Only this task.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to a file.")
@click.option("--wandb", "to_wandb", is_flag=True, help="Also log the rows as a W&B Table to their project.")
@click.option(
    "--pareto",
    is_flag=True,
    help="The runs no other run of the task beats on val accuracy, params and latency at once.",
)
@click.pass_context
def leaderboard(ctx, fmt: str, task: str | None, out: Path | None, to_wandb: bool, pareto: bool) -> None:
    """Rank the best validation run of each (task, model); read from results/ only."""
    from avbench.results.leaderboard import leaderboard_rows, render_csv, render_json, render_markdown, render_table
    from avbench.results.records import read_records

    records, skipped = read_records(results_dir(ctx))
    for path, reason in skipped:  # on stderr: the table or the exported file stays whole
        click.echo(f"skipped a damaged run record: {path}: {reason}", err=True)
    if pareto:
        from avbench.results.pareto import pareto_rows

        rows = pareto_rows(records, task)
    else:
        rows = leaderboard_rows(results_dir(ctx), task, records=records)
    if to_wandb and rows:
        log_leaderboard_rows(results_dir(ctx), rows)
    if fmt == "table" and out is None:
        if not rows:
            click.echo(f"no finished runs under {runs_root(results_dir(ctx))}")
            return
        if pareto:
            render_table(
                rows, make_console(), title="Pareto front: no run beats these on val accuracy, params and latency"
            )
        else:
            render_table(rows, make_console())
        return
    text = {"md": render_markdown, "csv": render_csv, "json": render_json, "table": render_markdown}[fmt](rows)
    if out is not None:
        from avbench.results.records import write_bytes_atomic

        content = (text + ("" if text.endswith("\n") else "\n")).encode()
        write_bytes_atomic(out, lambda handle: handle.write(content))
        click.echo(f"wrote {len(rows)} row(s) to {out}")
    else:
        click.echo(text)


cli.add_command(data)
cli.add_command(sweep)
cli.add_command(replicate)
cli.add_command(compare)
cli.add_command(control)
cli.add_command(show)
cli.add_command(agent_trial)
cli.add_command(features)
cli.add_command(import_group)
cli.add_command(pipeline)
cli.add_command(new)
cli.add_command(cache)
cli.add_command(report)
cli.add_command(sync)


def main() -> None:
    try:
        cli(prog_name="avbench")
    finally:
        heap.skip_final_collection()


if __name__ == "__main__":
    main()
