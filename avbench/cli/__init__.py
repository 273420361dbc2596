"""The `avbench` command. Each command parses, calls one library function and renders.

Heavy libraries (torch, optuna, wandb) are imported inside the commands that need them, so
`avbench --help` and `avbench leaderboard` start in a fraction of a second.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from avbench.cli.audeep import features
from avbench.cli.boundary import BoundaryGroup
from avbench.cli.cache import cache
from avbench.cli.support import common_run_options, make_console, results_dir, with_strict
from avbench.cli.sweep import agent_trial, show, sweep
from avbench.errors import AvbenchError


@click.group(cls=BoundaryGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--results",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="AVBENCH_RESULTS",
    default=Path("results"),
    show_default=True,
    help="Where run records, studies and caches go.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors (or AVBENCH_DEBUG=1).")
@click.version_option(package_name="avbench")
@click.pass_context
def cli(ctx: click.Context, results: Path, debug: bool) -> None:
    """Benchmark harness and sweep orchestrator for audio and audio-visual classification."""
    ctx.obj = {"results": results}


@cli.command("list")
@click.argument("what", type=click.Choice(["experiments", "tasks", "models"]))
def list_cmd(what: str) -> None:
    """List experiments, tasks or models."""
    if what == "models":
        _list_models()
        return
    if what == "experiments":
        from avbench.config import list_experiments

        names = list_experiments()
    else:
        from avbench.registry import MODELS, TASKS

        names = (TASKS if what == "tasks" else MODELS).names()
    for name in names:
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
    from avbench.config import list_experiments, load_experiment
    from avbench.preflight import check_model_args
    from avbench.registry import TASKS
    from avbench.sweep.space import resolve_space

    names = experiments or tuple(list_experiments())
    problems = 0
    for name in names:
        try:
            loaded = load_experiment(name)
            TASKS.get(loaded.config.task)
            check_model_args(loaded.config)
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
@click.option("--cv", is_flag=True, help="Cross-validate over the task's predefined folds (esc50, esc10).")
@click.pass_context
def run(ctx, experiment, overrides, preset, synthetic, no_wandb, strict, cv) -> None:
    """Train and evaluate one experiment once (every field must have a value)."""
    from avbench.config import load_experiment
    from avbench.display import feature_progress, summarize

    loaded = load_experiment(experiment, preset=preset, overrides=with_strict(overrides, strict))
    if loaded.searched:
        raise AvbenchError(
            f"{loaded.name} has searched (null) fields: {', '.join(loaded.searched)}; "
            "give them values with --set KEY=VALUE or run `avbench sweep`"
        )
    from avbench.runner import run_experiment

    config = loaded.resolve({})
    if cv:
        _cross_validate(ctx, loaded.name, config, synthetic=synthetic, use_wandb=not no_wandb, preset=preset)
        return
    from avbench.distributed import join_ranks

    console = make_console()
    main_rank = join_ranks().is_main  # under torchrun every rank trains; rank 0 speaks for them
    with feature_progress(console) as on_features:
        record = run_experiment(
            config,
            results=results_dir(ctx),
            synthetic=synthetic,
            use_wandb=not no_wandb,
            preset=preset,
            progress=on_features if main_rank else None,
        )
    if main_rank:
        console.print(f"{loaded.name} {record.run_id}: {summarize(record)}")
        click.echo(f"record: {results_dir(ctx) / 'runs' / loaded.name / record.run_id / 'record.json'}")
    if record.status == "failed":
        sys.exit(1)


def _cross_validate(ctx, name: str, config, **run_kwargs) -> None:
    from avbench.crossval import fold_count, run_cross_validation
    from avbench.display import summarize
    from avbench.runner import new_run_id, run_experiment

    console = make_console()
    folds = fold_count(config.task)
    group = f"cv-{new_run_id()}"
    console.print(f"{name}: {folds}-fold cross-validation ({group})")
    outcome = run_cross_validation(
        config,
        results=results_dir(ctx),
        run=run_experiment,
        group=group,
        on_fold_end=lambda fold, record: console.print(f"fold {fold}: {summarize(record)}"),
        **run_kwargs,
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
@click.pass_context
def leaderboard(ctx, fmt: str, task: str | None, out: Path | None) -> None:
    """Rank the best validation run of each (task, model); read from results/ only."""
    from avbench.results.leaderboard import leaderboard_rows, render_csv, render_json, render_markdown, render_table
    from avbench.results.records import read_records

    records, skipped = read_records(results_dir(ctx))
    for path, reason in skipped:  # on stderr: the table or the exported file stays whole
        click.echo(f"skipped a damaged run record: {path}: {reason}", err=True)
    rows = leaderboard_rows(results_dir(ctx), task, records=records)
    if fmt == "table" and out is None:
        if not rows:
            click.echo(f"no finished runs under {results_dir(ctx) / 'runs'}")
            return
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


@cli.group()
def data() -> None:
    """Datasets: write synthetic stand-ins, inspect a dataset folder."""


@data.command()
@click.argument("task")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output directory [default: the folder --synthetic uses, data/synthetic/<task>[-<size>]].",
)
@click.option("--size", type=click.Choice(["tiny", "small", "medium", "full"]), default="small", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def synth(task: str, out: Path | None, size: str, seed: int) -> None:
    """Write TASK's synthetic stand-in in the dataset's published layout."""
    from avbench.preflight import synthetic_root
    from avbench.registry import TASKS

    task_cls = TASKS.get(task)
    target = out or synthetic_root(task, size)
    count = task_cls().synthesize(target, size=size, seed=seed)
    click.echo(f"wrote {count} clips for {task} to {target} ({task_cls.layout})")


@data.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--task", default=None, help="The dataset's task [default: detected from the marker or the layout].")
@click.option(
    "--fold",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Test fold, for tasks with predefined folds (esc50, esc10).",
)
@click.option("--speaker-regex", default=None, help="Regex with one group: the speaker in a file name.")
@click.option("--split-seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON instead of tables.")
def inspect(path: Path, task: str | None, fold: int, speaker_regex: str | None, split_seed: int, as_json: bool) -> None:
    """Files, classes per split, durations, formats and every problem in a dataset folder."""
    from avbench.config import DataConfig
    from avbench.data.inspection import inspect_dataset

    data_config = DataConfig(fold=fold, speaker_regex=speaker_regex, split_seed=split_seed)
    report = inspect_dataset(path, task, data_config)
    if as_json:
        import dataclasses
        import json

        click.echo(json.dumps(dataclasses.asdict(report), ensure_ascii=False, indent=2))
        return
    _render_inspection(report, make_console())


def _render_inspection(report, console) -> None:
    from rich.table import Table

    kind = "synthetic stand-in" if report.synthetic else "dataset"
    console.print(
        f"{report.root}: {report.task} {kind} (task from {report.detected_by}), {report.files} files, "
        f"{len(report.classes)} classes"
    )
    splits = Table("split", "files", "speakers", "duration min / mean / max (s)", title="Splits")
    for name, split in report.splits.items():
        spread = split.durations
        shown = f"{spread.min:.2f} / {spread.mean:.2f} / {spread.max:.2f}" if spread else "–"
        splits.add_row(name, str(split.files), str(split.speakers or "–"), shown)
    console.print(splits)
    classes = Table("class", *report.splits, "total", title="Files per class and split")
    for name, counts in report.counts.items():
        classes.add_row(name, *(str(counts[split]) for split in report.splits), str(sum(counts.values())))
    console.print(classes)
    formats = Table("property", "value", "files", title="Formats")
    tallies = [
        ("sample rate (Hz)", report.sample_rates),
        ("channels", report.channels),
        ("container / codecs", report.formats),
        ("video", report.video),
        ("fold", report.folds or {}),
    ]
    for label, tally in tallies:
        for value, count in tally.items():
            formats.add_row(label, str(value), str(count))
    console.print(formats)
    if not report.problems:
        console.print("no problems found")
        return
    problems = Table("file", "problem", title=f"{len(report.problems)} problem(s)")
    for where, reason in report.problems:
        problems.add_row(where, reason)
    console.print(problems)


cli.add_command(sweep)
cli.add_command(show)
cli.add_command(agent_trial)
cli.add_command(features)
cli.add_command(cache)


def main() -> None:
    cli(prog_name="avbench")


if __name__ == "__main__":
    main()
