"""`avbench sweep` and `avbench show`: search an experiment's null fields, then read the study.

Only click is imported at module level: optuna, torch and wandb load inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from avbench.cli.launchers import launcher_options, launcher_request
from avbench.cli.replicate import replicate_best, replicate_options
from avbench.cli.support import count_option, grid_run_options, make_console, results_dir, with_init_from, with_strict
from avbench.sweep.backends import BACKENDS

SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp", "nsga2", "auto")  # avbench.sweep.samplers imports optuna


@click.command()
@grid_run_options
@click.option("--task", "grid_task", default=None, help="Sweep every experiment of this task, in turn.")
@click.option("--model", "grid_model", default=None, help="Sweep every experiment of this model, in turn.")
@count_option(
    "--trials",
    help="Finished trials in total, counting earlier runs and all workers [default: sweep.trials].",
)
@count_option(
    "--workers",
    help="Worker processes training trials at once against the same storage [default: one per GPU slot "
    "where GPUs are visible, else 1].",
)
@click.option(
    "--gpus", default=None, metavar="IDS", help="GPUs the workers share, e.g. 0,1,2,3 [default: all visible]."
)
@count_option(
    "--gpus-per-trial",
    help="GPUs per trial: each worker is a data-parallel launch on its own; with --launcher slurm each "
    "array task asks for them (--gpus-per-task) [default: 1].",
)
@count_option("--trials-per-gpu", help="Workers sharing each GPU (small trials) [default: 1].")
@click.option(
    "--allow-fake-gpus", is_flag=True, help="Assign --gpus ids without CUDA (the workers train on CPU; for tests)."
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
    help="[default: from the sweep file's method: bayes → tpe, random, grid] auto: nsga2 with several "
    "objectives, grid for a small finite space (no larger than --trials), else tpe; gp: Gaussian process.",
)
@click.option(
    "--objective",
    "objectives",
    multiple=True,
    metavar="METRIC:max|min",
    help="Optimise several objectives (repeat): val/<m>, test/<m>, params, latency_ms, train_time_s, "
    "peak_memory_mb [default: sweep.objectives, else val/<train.metric>:max].",
)
@click.option(
    "--warm-start",
    default=None,
    metavar="STUDY|EXPERIMENT",
    help="Run the best trials of this study (or of this experiment's study) first.",
)
@click.option(
    "--enqueue",
    multiple=True,
    metavar="KEY=VALUE,...",
    help="Run this configuration first (repeatable); missing keys are sampled.",
)
@click.option("--pruner", type=click.Choice(["median", "hyperband", "none"]), default=None)
@count_option(
    "--threads",
    help="torch CPU threads per worker [default: torch's own for one worker, cores // N for N workers].",
)
@launcher_options
@click.option("--dry-run", is_flag=True, help="Print the search space and a cost estimate; create no study.")
@click.option(
    "--backend",
    default="optuna",
    show_default=True,
    help=f"One of {', '.join(BACKENDS)}. wandb: W&B Sweeps, on W&B's server when logged in, else W&B's own "
    "sweep engine run locally; wandb-online: on W&B's server only.",
)
@replicate_options
@click.pass_context
def sweep(ctx, experiment, overrides, preset, synthetic, no_wandb, init_from, strict, grid_task, grid_model, **options):
    """Search the null fields of an experiment (or of every experiment of --task / --model); re-run to resume."""
    if experiment is None or grid_task or grid_model:
        from avbench.cli.catalog import sweep_grid

        return sweep_grid(ctx, sweep, experiment=experiment, task=grid_task, model=grid_model)
    top = options.pop("top")
    options["warm_top"] = top or 3
    replicas = {"replicates": options.pop("replicates"), "top": top or 1, "resplit": options.pop("resplit")}
    # Every option not named here is the SweepRequest field of the same name.
    from avbench.context import RunContext
    from avbench.display import ConsoleView
    from avbench.sweep import run
    from avbench.sweep.core import SweepRequest

    # Workers get --strict and --init-from too, through their --set.
    launch = launcher_request(options)
    request = SweepRequest(
        experiment=experiment, overrides=with_init_from(with_strict(overrides, strict), init_from), **options, **launch
    )
    run_ctx = RunContext(results_dir(ctx), synthetic=synthetic, use_wandb=not no_wandb, preset=preset)
    console = make_console()
    outcome = run(request, run_ctx, ConsoleView(console))
    if outcome is None:
        return
    if replicas["replicates"] and replicas["replicates"] > 1 and not request.dry_run:
        from avbench.sweep.launch import started_by_parent

        if not started_by_parent():  # the parent of --workers replicates once, after its workers
            replicate_best(run_ctx, request, outcome.study, console, seeds=replicas.pop("replicates"), **replicas)
    _report_sweep(run_ctx, outcome, console)


def _report_sweep(run_ctx, outcome, console) -> None:
    from rich.markup import escape

    from avbench.display import format_values
    from avbench.errors import AvbenchError
    from avbench.results.leaderboard import leaderboard_rows, render_table
    from avbench.sweep.launch import started_by_parent

    skipped = f", {outcome.infeasible} infeasible (skipped untrained)" if outcome.infeasible else ""
    console.print(
        f"study {outcome.study}: {outcome.finished} finished, {outcome.failed} failed{skipped} ({outcome.storage})"
    )
    short = outcome.finished < outcome.target and not outcome.shared
    if short and outcome.grid_exhausted:
        console.print(
            f"{outcome.target - outcome.finished} trial(s) short of {outcome.target}: every grid point was "
            "tried; failed and infeasible ones are not retried"
        )
    if outcome.best_value is not None:
        console.print(
            f"best {outcome.metric}={outcome.best_value:.4f} "
            f"{escape(f'[{format_values(outcome.best_params)}]')} run {outcome.best_run_id}"
        )
    if outcome.front:
        from avbench.sweep.show import render_front

        render_front(outcome.front, outcome.objectives, console)
    if not started_by_parent():  # a worker's parent shows the leaderboard once
        rows = [r for r in leaderboard_rows(run_ctx.results, outcome.task) if r["model"] == outcome.model]
        if rows:
            render_table(rows, console)
    if short and not outcome.grid_exhausted:  # an unattended sweep that stopped early must not look done
        raise AvbenchError(
            f"study {outcome.study}: {outcome.finished} of {outcome.target} trials finished; "
            "re-run the same command to resume"
        )


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


@click.command("agent-trial", hidden=True)  # the name is avbench.sweep.backends.wandb_online.AGENT_TRIAL
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
    from avbench.context import RunContext
    from avbench.display import summarize
    from avbench.sweep.backends.wandb_online import run_agent_trial

    loaded = load_experiment(experiment, preset=preset, overrides=overrides)
    run_ctx = RunContext(results_dir(ctx), synthetic=synthetic, preset=preset)
    record = run_agent_trial(loaded, params_json, run_ctx, sweep=sweep_name)
    make_console().print(f"{loaded.name} {record.run_id or ''}: {summarize(record)}")
    if record.status in ("failed", "infeasible"):  # W&B marks the run failed
        sys.exit(1)
