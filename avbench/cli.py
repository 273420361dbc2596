"""The `avbench` command. Each command parses, calls one library function and renders.

Heavy libraries (torch, optuna, wandb) are imported inside the commands that need them, so
`avbench --help` and `avbench leaderboard` start in a fraction of a second.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from avbench.errors import AvbenchError


class _Group(click.Group):
    """User errors become one line and exit 1; Ctrl-C says how to resume."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AvbenchError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("\ninterrupted: finished trials are kept; re-run the same command to resume", err=True)
            sys.exit(130)


def _console():
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        # Logs and pipes: do not squeeze tables into 80 columns.
        console = Console(highlight=False, width=160)
    return console


def _results(ctx: click.Context) -> Path:
    return ctx.obj["results"]


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), envvar="AVBENCH_RESULTS",
              default=Path("results"), show_default=True, help="Where run records, studies and caches go.")
@click.version_option(package_name="avbench")
@click.pass_context
def cli(ctx: click.Context, results: Path) -> None:
    """Benchmark harness and sweep orchestrator for audio and audio-visual classification."""
    ctx.obj = {"results": results}


@cli.command("list")
@click.argument("what", type=click.Choice(["experiments", "tasks", "models"]))
def list_cmd(what: str) -> None:
    """List experiments, tasks or models."""
    if what == "experiments":
        from avbench.config import list_experiments

        names = list_experiments()
    else:
        from avbench.registry import MODELS, TASKS

        names = (TASKS if what == "tasks" else MODELS).names()
    for name in names:
        click.echo(name)


@cli.command()
@click.argument("experiments", nargs=-1)
def validate(experiments: tuple[str, ...]) -> None:
    """Check experiment files: schema, registry names, model args and search space."""
    from avbench.config import list_experiments, load_experiment
    from avbench.registry import TASKS
    from avbench.runner import check_model_args
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


def _common_run_options(func):
    func = click.option("--strict", is_flag=True,
                        help="Stop at the first bad data file (sets data.strict) instead of skipping it.")(func)
    func = click.option("--no-wandb", is_flag=True, help="Do not log to Weights & Biases.")(func)
    func = click.option("--synthetic", is_flag=True,
                        help="Use the task's synthetic stand-in (written on first use).")(func)
    func = click.option("--preset", default=None, help="A named override set from the experiment's presets.")(func)
    func = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                        help="Override a field, e.g. --set train.lr=3e-4 (repeatable).")(func)
    return click.argument("experiment")(func)


def _with_strict(overrides: tuple[str, ...], strict: bool) -> tuple[str, ...]:
    return (*overrides, "data.strict=true") if strict else overrides


@cli.command()
@_common_run_options
@click.option("--cv", is_flag=True, help="Cross-validate over the task's predefined folds (esc50, esc10).")
@click.pass_context
def run(ctx, experiment, overrides, preset, synthetic, no_wandb, strict, cv) -> None:
    """Train and evaluate one experiment once (every field must have a value)."""
    from avbench.config import load_experiment
    from avbench.display import feature_progress, summarize

    loaded = load_experiment(experiment, preset=preset, overrides=_with_strict(overrides, strict))
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
    console = _console()
    with feature_progress(console) as on_features:
        record = run_experiment(config, results=_results(ctx), synthetic=synthetic, use_wandb=not no_wandb,
                                preset=preset, progress=on_features)
    console.print(f"{loaded.name} {record.run_id}: {summarize(record)}")
    click.echo(f"record: {_results(ctx) / 'runs' / loaded.name / record.run_id / 'record.json'}")
    if record.status == "failed":
        sys.exit(1)


def _cross_validate(ctx, name: str, config, **run_kwargs) -> None:
    from avbench.crossval import fold_count, run_cross_validation
    from avbench.display import summarize
    from avbench.runner import new_run_id, run_experiment

    console = _console()
    folds = fold_count(config.task)
    group = f"cv-{new_run_id()}"
    console.print(f"{name}: {folds}-fold cross-validation ({group})")
    outcome = run_cross_validation(
        config, results=_results(ctx), run=run_experiment, group=group,
        on_fold_end=lambda fold, record: console.print(f"fold {fold}: {summarize(record)}"), **run_kwargs,
    )
    for split in ("val", "test"):
        shown = ", ".join(f"{split}/{m}={mean:.4f} ± {std:.4f}" for m, (mean, std) in outcome.summary(split).items())
        console.print(shown or f"no fold completed ({split})")
    if any(r.status == "failed" for r in outcome.records):
        sys.exit(1)


SAMPLERS = ("tpe", "random", "grid", "cmaes")  # avbench.sweep.samplers imports optuna; --help must not


@cli.command()
@_common_run_options
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Finished trials in total, counting earlier runs and all workers [default: sweep.trials].")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes training trials at once against the same storage.")
@click.option("--storage", default=None,
              help="A .db file or sqlite:///… (SQLite), a .log file or journal:///… (Optuna journal file), "
                   "or postgresql://… [default: results/studies/<experiment>.db].")
@click.option("--study", default=None,
              help="Study name; join an existing study [default: experiment-preset-synthetic].")
@click.option("--sweep-config", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Search-space file [default: sweeps/<experiment>.yaml].")
@click.option("--sampler", type=click.Choice(SAMPLERS), default=None,
              help="[default: from the sweep file's method: bayes → tpe, random, grid]")
@click.option("--pruner", type=click.Choice(["median", "hyperband", "none"]), default=None)
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch CPU threads per worker [default: torch's own for one worker, cores // N for N workers].")
@click.option("--dry-run", is_flag=True, help="Print the search space and a cost estimate; create no study.")
@click.option("--backend", type=click.Choice(["optuna", "wandb"]), default="optuna", show_default=True,
              help="wandb: W&B's own sweep engine (grid/random/bayes, hyperband), run locally.")
@click.pass_context
def sweep(ctx, experiment, overrides, preset, synthetic, no_wandb, strict, trials, workers, storage, study,
          sweep_config, sampler, pruner, threads, dry_run, backend):
    """Search the null fields of an experiment; re-run to resume."""
    from avbench.config import load_experiment
    from avbench.sweep.space import resolve_space

    overrides = _with_strict(overrides, strict)  # workers get it too, through their --set
    loaded = load_experiment(experiment, preset=preset, overrides=overrides)
    if not loaded.searched:
        raise AvbenchError(f"{loaded.name} has no null (searched) fields; use `avbench run`")
    space = resolve_space(loaded, sweep_config)
    console = _console()
    target = trials or loaded.config.sweep.trials
    if dry_run:
        from avbench.sweep.estimate import dry_run

        dry_run(loaded, space, console=console, trials=target, workers=workers, results=_results(ctx),
                synthetic=synthetic, sampler=sampler, pruner=pruner, storage=storage, study=study, preset=preset)
        return
    if backend == "wandb":
        outcome = _sweep_with_wandb(ctx, loaded, space, console, target=target, synthetic=synthetic,
                                    use_wandb=not no_wandb, preset=preset, study=study)
        _report_sweep(ctx, loaded, outcome, console)
        return
    from avbench.sweep.optuna_backend import open_study

    handle = open_study(loaded, space, trials=target, results=_results(ctx), preset=preset, synthetic=synthetic,
                        storage_url=storage, study=study, sampler=sampler, pruner=pruner)
    for note in handle.notes:
        console.print(f"note: {note}")
    console.print(f"sweep {loaded.name}: {handle.target} trials over {', '.join(space.params)} ({space.source}), "
                  f"sampler {handle.sampler}, {workers} worker(s), study {handle.name}")
    if workers == 1:
        outcome = _sweep_in_process(ctx, loaded, space, handle, console, synthetic=synthetic, use_wandb=not no_wandb,
                                    preset=preset, threads=threads)
    else:
        from avbench.sweep.workers import prepare_features_once, run_workers, threads_per_worker

        if prepare_features_once(loaded, space, results=_results(ctx), synthetic=synthetic):
            console.print("features ready in the cache for every worker")
        per_worker = threads or threads_per_worker(workers)
        argv = _worker_argv(ctx, experiment, overrides, preset, synthetic, no_wandb, handle, sweep_config, pruner,
                            per_worker)
        outcome = run_workers(handle, argv, workers=workers, threads=per_worker, results=_results(ctx),
                              experiment=loaded.name, console=console)
    _report_sweep(ctx, loaded, outcome, console)


def _sweep_with_wandb(ctx, loaded, space, console, *, target, synthetic, use_wandb, preset, study):
    from avbench.display import SweepDisplay
    from avbench.sweep.wandb_backend import run_wandb_sweep

    console.print(f"sweep {loaded.name}: {target} trials over {', '.join(space.params)} ({space.source}), "
                  "W&B sweep engine (local)")
    with SweepDisplay(console, target, 0, loaded.config.train.epochs) as display:
        return run_wandb_sweep(
            loaded, space, trials=target, results=_results(ctx), synthetic=synthetic, use_wandb=use_wandb,
            preset=preset, study=study, on_trial_start=display.trial_start, on_epoch=display.epoch,
            on_trial_end=display.trial_end, on_features=display.features,
        )


def _sweep_in_process(ctx, loaded, space, handle, console, *, synthetic, use_wandb, preset, threads):
    from avbench.display import SweepDisplay
    from avbench.sweep.optuna_backend import FINISHED_STATES, run_worker
    from avbench.sweep.workers import follow_parent

    follow_parent()  # a no-op unless this process is one of a parent's --workers
    finished = len(handle.study.get_trials(deepcopy=False, states=FINISHED_STATES))
    with SweepDisplay(console, handle.target, finished, loaded.config.train.epochs) as display:
        return run_worker(
            handle, loaded, space, results=_results(ctx), synthetic=synthetic, use_wandb=use_wandb, preset=preset,
            threads=threads, on_trial_start=display.trial_start, on_epoch=display.epoch, on_trial_end=display.trial_end,
            on_features=display.features,
        )


def _worker_argv(ctx, experiment, overrides, preset, synthetic, no_wandb, handle, sweep_config, pruner,
                 threads) -> list[str]:
    """The command each worker runs: this sweep, pinned to the parent's study and storage."""
    argv = [sys.executable, "-m", "avbench", "--results", str(Path(_results(ctx)).resolve()), "sweep", experiment,
            "--trials", str(handle.target), "--storage", handle.url, "--study", handle.name,
            "--sampler", handle.sampler, "--workers", "1", "--threads", str(threads)]
    for override in overrides:
        argv += ["--set", override]
    for flag, value in (("--preset", preset), ("--pruner", pruner),
                        ("--sweep-config", sweep_config and str(Path(sweep_config).resolve()))):
        if value:
            argv += [flag, value]
    return argv + (["--synthetic"] if synthetic else []) + (["--no-wandb"] if no_wandb else [])


def _report_sweep(ctx, loaded, outcome, console) -> None:
    from rich.markup import escape

    from avbench.display import format_values
    from avbench.leaderboard import leaderboard_rows, render_table
    from avbench.sweep.workers import PARENT_ENV

    console.print(f"study {outcome.study}: {outcome.finished} finished, {outcome.failed} failed ({outcome.storage})")
    if outcome.finished < outcome.target:
        short = f"{outcome.target - outcome.finished} trial(s) short of {outcome.target}"
        console.print(f"{short}: every grid point was tried and failed ones are not retried" if outcome.grid_exhausted
                      else f"{short}: re-run the same command to resume")
    if outcome.best_value is not None:
        console.print(f"best val/{loaded.config.train.metric}={outcome.best_value:.4f} "
                      f"{escape(f'[{format_values(outcome.best_params)}]')} run {outcome.best_run_id}")
    if os.environ.get(PARENT_ENV):
        return  # a worker: its parent shows the leaderboard once
    rows = [r for r in leaderboard_rows(_results(ctx), loaded.config.task) if r["model"] == loaded.config.model]
    if rows:
        render_table(rows, console)


@cli.command()
@click.argument("experiment")
@click.option("--study", default=None, help="Study name [default: the only study of EXPERIMENT in the storage].")
@click.option("--storage", default=None,
              help="Storage URL or file, as for `sweep` [default: results/studies/<experiment>.db].")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="How many best trials to list.")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots.")
@click.pass_context
def show(ctx, experiment: str, study: str | None, storage: str | None, top: int, no_plots: bool) -> None:
    """A study's best trials (val and test), trial states, parameter importances and plots."""
    from avbench.sweep.show import render_report, study_report, write_plots

    report = study_report(experiment, results=_results(ctx), study=study, storage=storage, top=top)
    console = _console()
    render_report(report, console)
    if not no_plots:
        for path in write_plots(report, _results(ctx)):
            console.print(f"plot: {path}", soft_wrap=True)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "md", "csv", "json"]), default="table", show_default=True)
@click.option("--task", default=None, help="Only this task.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to a file.")
@click.pass_context
def leaderboard(ctx, fmt: str, task: str | None, out: Path | None) -> None:
    """Rank the best validation run of each (task, model); read from results/ only."""
    from avbench.leaderboard import leaderboard_rows, render_csv, render_json, render_markdown, render_table

    rows = leaderboard_rows(_results(ctx), task)
    if fmt == "table" and out is None:
        if not rows:
            click.echo(f"no finished runs under {_results(ctx) / 'runs'}")
            return
        render_table(rows, _console())
        return
    text = {"md": render_markdown, "csv": render_csv, "json": render_json, "table": render_markdown}[fmt](rows)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + ("" if text.endswith("\n") else "\n"))
        click.echo(f"wrote {len(rows)} row(s) to {out}")
    else:
        click.echo(text)


@cli.group()
def data() -> None:
    """Datasets: write synthetic stand-ins, inspect a dataset folder."""


@data.command()
@click.argument("task")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output directory [default: the folder --synthetic uses, data/synthetic/<task>[-<size>]].")
@click.option("--size", type=click.Choice(["tiny", "small", "medium", "full"]), default="small", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def synth(task: str, out: Path | None, size: str, seed: int) -> None:
    """Write TASK's synthetic stand-in in the dataset's published layout."""
    from avbench.registry import TASKS
    from avbench.runner import synthetic_root

    task_cls = TASKS.get(task)
    target = out or synthetic_root(task, size)
    count = task_cls().synthesize(target, size=size, seed=seed)
    click.echo(f"wrote {count} clips for {task} to {target} ({task_cls.layout})")


@data.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--task", default=None, help="The dataset's task [default: detected from the marker or the layout].")
@click.option("--fold", type=click.IntRange(min=1), default=1, show_default=True,
              help="Test fold, for tasks with predefined folds (esc50, esc10).")
@click.option("--speaker-regex", default=None, help="Regex with one group: the speaker in a file name.")
@click.option("--split-seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON instead of tables.")
def inspect(path: Path, task: str | None, fold: int, speaker_regex: str | None, split_seed: int,
            as_json: bool) -> None:
    """Files, classes per split, durations, formats and every problem in a dataset folder."""
    from avbench.config import DataConfig
    from avbench.data.inspect import inspect_dataset

    data_config = DataConfig(fold=fold, speaker_regex=speaker_regex, split_seed=split_seed)
    report = inspect_dataset(path, task, data_config)
    if as_json:
        import dataclasses
        import json

        click.echo(json.dumps(dataclasses.asdict(report), ensure_ascii=False, indent=2))
        return
    _render_inspection(report, _console())


def _render_inspection(report, console) -> None:
    from rich.table import Table

    kind = "synthetic stand-in" if report.synthetic else "dataset"
    console.print(f"{report.root}: {report.task} {kind} (task from {report.detected_by}), {report.files} files, "
                  f"{len(report.classes)} classes")
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
    tallies = [("sample rate (Hz)", report.sample_rates), ("channels", report.channels),
               ("container / codecs", report.formats), ("video", report.video), ("fold", report.folds or {})]
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


def main() -> None:
    cli(prog_name="avbench")


if __name__ == "__main__":
    main()
