"""`avbench sweep` and `avbench show`: search an experiment's null fields, then read the study.

Only click is imported at module level: optuna, torch and wandb load inside the commands.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from avbench.cli.support import grid_run_options, make_console, results_dir, with_strict
from avbench.errors import AvbenchError

SAMPLERS = ("tpe", "random", "grid", "cmaes")  # avbench.sweep.samplers imports optuna; --help must not


@click.command()
@grid_run_options
@click.option("--task", "grid_task", default=None, help="Sweep every experiment of this task, in turn.")
@click.option("--model", "grid_model", default=None, help="Sweep every experiment of this model, in turn.")
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=None,
    help="Finished trials in total, counting earlier runs and all workers [default: sweep.trials].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes training trials at once against the same storage.",
)
@click.option(
    "--storage",
    default=None,
    help="A .db file or sqlite:///… (SQLite), a .log file or journal:///… (Optuna journal file), "
    "or postgresql://… [default: results/studies/<experiment>.db].",
)
@click.option(
    "--study", default=None, help="Study name; join an existing study [default: experiment-preset-synthetic]."
)
@click.option(
    "--sweep-config",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Search-space file [default: the experiment's sweeps/<experiment>.yaml, found as experiments are].",
)
@click.option(
    "--sampler",
    type=click.Choice(SAMPLERS),
    default=None,
    help="[default: from the sweep file's method: bayes → tpe, random, grid]",
)
@click.option("--pruner", type=click.Choice(["median", "hyperband", "none"]), default=None)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="torch CPU threads per worker [default: torch's own for one worker, cores // N for N workers].",
)
@click.option("--dry-run", is_flag=True, help="Print the search space and a cost estimate; create no study.")
@click.option(
    "--backend",
    type=click.Choice(["optuna", "wandb"]),
    default="optuna",
    show_default=True,
    help="wandb: W&B Sweeps, on W&B's server when logged in, else W&B's own sweep engine run locally.",
)
@click.pass_context
def sweep(
    ctx,
    experiment,
    overrides,
    preset,
    synthetic,
    no_wandb,
    strict,
    trials,
    workers,
    storage,
    study,
    sweep_config,
    sampler,
    pruner,
    threads,
    dry_run,
    backend,
    grid_task,
    grid_model,
):
    """Search the null fields of an experiment (or of every experiment of --task / --model); re-run to resume."""
    if experiment is None or grid_task or grid_model:
        from avbench.cli.catalog import sweep_grid

        return sweep_grid(ctx, sweep, experiment=experiment, task=grid_task, model=grid_model)
    from avbench.catalog import load_experiment
    from avbench.distributed import join_ranks
    from avbench.sweep.space import resolve_space

    overrides = with_strict(overrides, strict)  # workers get it too, through their --set
    loaded = load_experiment(experiment, preset=preset, overrides=overrides)
    if not loaded.searched:
        raise AvbenchError(f"{loaded.name} has no null (searched) fields; use `avbench run`")
    space = resolve_space(loaded, sweep_config)
    console = make_console()
    target = trials or loaded.config.sweep.trials
    online = backend == "wandb" and _wandb_online(not no_wandb)
    _refuse_under_launcher(workers=workers, dry_run=dry_run, online=online)
    ranks = join_ranks()  # one rank of one without torchrun / accelerate launch
    if not ranks.is_main:
        from avbench.sweep.data_parallel import follow_trials

        follow_trials(
            ranks, loaded, results=results_dir(ctx), synthetic=synthetic, use_wandb=not no_wandb, preset=preset
        )
        return
    if dry_run:
        from avbench.sweep.estimate import dry_run

        dry_run(
            loaded,
            space,
            console=console,
            trials=target,
            workers=workers,
            results=results_dir(ctx),
            synthetic=synthetic,
            sampler=sampler,
            pruner=pruner,
            storage=storage,
            study=study,
            preset=preset,
        )
        return
    if online:
        from avbench.sweep.wandb_online import run_online_sweep

        outcome = run_online_sweep(
            loaded,
            space,
            experiment=experiment,
            trials=target,
            results=results_dir(ctx),
            synthetic=synthetic,
            preset=preset,
            overrides=overrides,
            study=study,
            say=lambda line: console.print(line, soft_wrap=True),
        )
        _report_sweep(ctx, loaded, outcome, console)
        return
    if backend == "wandb":
        outcome = _sweep_with_wandb(
            ctx,
            loaded,
            space,
            console,
            target=target,
            synthetic=synthetic,
            use_wandb=not no_wandb,
            preset=preset,
            study=study,
            ranks=ranks,
        )
        _report_sweep(ctx, loaded, outcome, console)
        return
    from avbench.sweep.optuna_backend import open_study

    handle = open_study(
        loaded,
        space,
        trials=target,
        results=results_dir(ctx),
        preset=preset,
        synthetic=synthetic,
        storage_url=storage,
        study=study,
        sampler=sampler,
        pruner=pruner,
    )
    for note in handle.notes:
        console.print(f"note: {note}")
    console.print(
        f"sweep {loaded.name}: {handle.target} trials over {', '.join(space.params)} ({space.source}), "
        f"sampler {handle.sampler}, {workers} worker(s), study {handle.name}"
    )
    if workers == 1:
        outcome = _sweep_in_process(
            ctx,
            loaded,
            space,
            handle,
            console,
            synthetic=synthetic,
            use_wandb=not no_wandb,
            preset=preset,
            threads=threads,
            ranks=ranks,
        )
    else:
        from avbench.sweep.workers import prepare_features_once, run_workers, threads_per_worker

        def prepare_features() -> None:
            if prepare_features_once(loaded, space, results=results_dir(ctx), synthetic=synthetic):
                console.print("features ready in the cache for every worker")

        per_worker = threads or threads_per_worker(workers)
        argv = _worker_argv(
            ctx, experiment, overrides, preset, synthetic, no_wandb, handle, sweep_config, pruner, per_worker
        )
        outcome = run_workers(
            handle,
            argv,
            workers=workers,
            threads=per_worker,
            results=results_dir(ctx),
            experiment=loaded.name,
            console=console,
            while_starting=prepare_features,
        )
    _report_sweep(ctx, loaded, outcome, console)


def _wandb_online(use_wandb: bool) -> bool:
    from avbench.sweep.wandb_online import wandb_online

    return wandb_online(use_wandb)


def _refuse_under_launcher(*, workers: int, dry_run: bool, online: bool) -> None:
    from avbench.distributed import launched_processes

    launched = launched_processes()
    if launched == 1:
        return
    if workers > 1:
        raise AvbenchError(
            f"--workers {workers} under torchrun / accelerate launch: the {launched} launched processes "
            "already train each trial together; drop --workers (for trials at once, start several "
            "launches with the same --storage)"
        )
    if dry_run:
        raise AvbenchError("--dry-run runs in one process: run it without torchrun / accelerate launch")
    if online:
        raise AvbenchError(
            "an online W&B sweep runs each trial as its agent's command, one process each: run it "
            "without torchrun / accelerate launch (or locally with --no-wandb or WANDB_MODE=offline)"
        )


def _hooks(display, ranks):
    """The display's hooks; under a launcher, rank 0 also announces each trial to the other
    ranks when it starts."""
    from avbench.sweep.trial_loop import SweepHooks

    trial_start = display.trial_start
    if ranks.count > 1:
        from avbench.sweep.data_parallel import announcing

        trial_start = announcing(ranks, trial_start)
    return SweepHooks(
        trial_start=trial_start, epoch=display.epoch, trial_end=display.trial_end, features=display.features
    )


def _release_ranks(ranks) -> None:
    if ranks.count > 1:
        from avbench.sweep.data_parallel import end_of_sweep

        end_of_sweep(ranks)


def _sweep_with_wandb(ctx, loaded, space, console, *, target, synthetic, use_wandb, preset, study, ranks):
    from avbench.display import SweepDisplay
    from avbench.sweep.wandb_backend import run_wandb_sweep

    console.print(
        f"sweep {loaded.name}: {target} trials over {', '.join(space.params)} ({space.source}), "
        "W&B sweep engine (local)"
    )
    with SweepDisplay(console, target, 0, loaded.config.train.epochs) as display:
        outcome = run_wandb_sweep(
            loaded,
            space,
            trials=target,
            results=results_dir(ctx),
            synthetic=synthetic,
            use_wandb=use_wandb,
            preset=preset,
            study=study,
            hooks=_hooks(display, ranks),
        )
    _release_ranks(ranks)
    return outcome


def _sweep_in_process(ctx, loaded, space, handle, console, *, synthetic, use_wandb, preset, threads, ranks):
    from avbench.display import SweepDisplay
    from avbench.sweep.optuna_backend import count_finished, run_worker
    from avbench.sweep.workers import follow_parent

    follow_parent()  # a no-op unless this process is one of a parent's --workers
    finished = count_finished(handle.study.get_trials(deepcopy=False))
    with SweepDisplay(console, handle.target, finished, loaded.config.train.epochs) as display:
        outcome = run_worker(
            handle,
            loaded,
            space,
            results=results_dir(ctx),
            synthetic=synthetic,
            use_wandb=use_wandb,
            preset=preset,
            threads=threads,
            hooks=_hooks(display, ranks),
        )
    _release_ranks(ranks)
    return outcome


def _worker_argv(
    ctx, experiment, overrides, preset, synthetic, no_wandb, handle, sweep_config, pruner, threads
) -> list[str]:
    """The command each worker runs: this sweep, pinned to the parent's study and storage."""
    argv = [
        sys.executable,
        "-m",
        "avbench",
        "--results",
        str(Path(results_dir(ctx)).resolve()),
        "sweep",
        experiment,
        "--trials",
        str(handle.target),
        "--storage",
        handle.url,
        "--study",
        handle.name,
        "--sampler",
        handle.sampler,
        "--workers",
        "1",
        "--threads",
        str(threads),
    ]
    for override in overrides:
        argv += ["--set", override]
    for flag, value in (
        ("--preset", preset),
        ("--pruner", pruner),
        ("--sweep-config", sweep_config and str(Path(sweep_config).resolve())),
    ):
        if value:
            argv += [flag, value]
    return argv + (["--synthetic"] if synthetic else []) + (["--no-wandb"] if no_wandb else [])


def _report_sweep(ctx, loaded, outcome, console) -> None:
    from rich.markup import escape

    from avbench.display import format_values
    from avbench.results.leaderboard import leaderboard_rows, render_table
    from avbench.sweep.workers import PARENT_ENV

    skipped = f", {outcome.infeasible} infeasible (skipped untrained)" if outcome.infeasible else ""
    console.print(
        f"study {outcome.study}: {outcome.finished} finished, {outcome.failed} failed{skipped} ({outcome.storage})"
    )
    if outcome.finished < outcome.target:
        short = f"{outcome.target - outcome.finished} trial(s) short of {outcome.target}"
        console.print(
            f"{short}: every grid point was tried; failed and infeasible ones are not retried"
            if outcome.grid_exhausted
            else f"{short}: re-run the same command to resume"
        )
    if outcome.best_value is not None:
        console.print(
            f"best val/{loaded.config.train.metric}={outcome.best_value:.4f} "
            f"{escape(f'[{format_values(outcome.best_params)}]')} run {outcome.best_run_id}"
        )
    if os.environ.get(PARENT_ENV):
        return  # a worker: its parent shows the leaderboard once
    rows = [r for r in leaderboard_rows(results_dir(ctx), loaded.config.task) if r["model"] == loaded.config.model]
    if rows:
        render_table(rows, console)


@click.command()
@click.argument("experiment")
@click.option("--study", default=None, help="Study name [default: the only study of EXPERIMENT in the storage].")
@click.option(
    "--storage", default=None, help="Storage URL or file, as for `sweep` [default: results/studies/<experiment>.db]."
)
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="How many best trials to list.")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots.")
@click.pass_context
def show(ctx, experiment: str, study: str | None, storage: str | None, top: int, no_plots: bool) -> None:
    """A study's best trials (val and test), trial states, parameter importances and plots."""
    from avbench.sweep.show import render_report, study_report, write_plots

    report = study_report(experiment, results=results_dir(ctx), study=study, storage=storage, top=top)
    console = make_console()
    render_report(report, console)
    if not no_plots:
        for path in write_plots(report, results_dir(ctx)):
            console.print(f"plot: {path}", soft_wrap=True)


@click.command("agent-trial", hidden=True)  # the name is avbench.sweep.wandb_online.AGENT_TRIAL
@click.argument("experiment")
@click.option("--params", "params_json", required=True, help="The trial's parameters as JSON (W&B's ${args_json}).")
@click.option("--sweep", "sweep_name", default=None, help="The sweep's name, for the run record.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
@click.option("--preset", default=None)
@click.option("--synthetic", is_flag=True)
@click.pass_context
def agent_trial(ctx, experiment, params_json, sweep_name, overrides, preset, synthetic) -> None:
    """One trial of an online W&B sweep: the command `wandb agent` runs, on any machine."""
    from avbench.catalog import load_experiment
    from avbench.display import summarize
    from avbench.sweep.wandb_online import run_agent_trial

    loaded = load_experiment(experiment, preset=preset, overrides=overrides)
    record = run_agent_trial(
        loaded, params_json, results=results_dir(ctx), synthetic=synthetic, preset=preset, sweep=sweep_name
    )
    make_console().print(f"{loaded.name} {record.run_id}: {summarize(record)}")
    if record.status == "failed":
        sys.exit(1)
