"""`avbench replicate` and `avbench sweep --replicates`: the best trials again, with other seeds.

Only click at module level; the training stack loads inside the commands.
"""

from __future__ import annotations

import click

from avbench.cli.support import common_run_options, count_option, make_console, results_dir, with_init_from, with_strict


def replicate_options(func):
    """`sweep`'s --replicates K, --top T (shared with --warm-start) and --resplit."""
    func = click.option(
        "--resplit", is_flag=True, help="Replicates also draw a new split (data.split_seed + i) [default: same split]."
    )(func)
    # One --top for both: --warm-start runs the source's best first, --replicates trains its best again.
    func = count_option(
        "--top", help="How many best trials: run first with --warm-start [default: 3], replicated [default: 1]."
    )(func)
    return count_option(
        "--replicates",
        help="After the search, train the --top best trials again until each has K seeds (folds × seeds with "
        "folds); finished replicates are kept, so K can be raised later.",
    )(func)


def replicate_best(run_ctx, request, study: str, console, *, seeds: int, top: int, resplit: bool) -> None:
    """Train the missing replicates of the study's best trials, one line each."""
    from rich.markup import escape

    from avbench.catalog import load_experiment
    from avbench.display import summarize
    from avbench.sweep.replicates import ReplicateRequest, run_replicates

    loaded = load_experiment(request.experiment, preset=run_ctx.preset, overrides=request.overrides)
    wanted = ReplicateRequest(study=study, top=top, seeds=seeds, resplit=resplit)

    def started(replicate) -> None:
        where = f", fold {replicate.fold}" if replicate.fold is not None else ""
        console.print(
            escape(f"replicate {replicate.index} of trial {replicate.trial.trial}: seed {replicate.seed}{where}")
        )

    def ended(record) -> None:
        console.print(f"  {record.run_id}: {summarize(record)}")

    ran = run_replicates(loaded, run_ctx, wanted, on_start=started, on_end=ended)
    console.print(f"replicates: {len(ran)} trained now; the best {top} trial(s) of {study} have {seeds} seed(s) each")


@click.command()
@common_run_options
@click.option("--study", default=None, help="The study [default: experiment-preset-synthetic, as `sweep` names it].")
@count_option("--seeds", default=3, help="Seeds each replicated trial should have (its own included).")
@count_option("--top", default=1, help="How many of the best trials (by validation) to replicate.")
@click.option("--resplit", is_flag=True, help="Replicates also draw a new split (data.split_seed + i).")
@click.pass_context
def replicate(ctx, experiment, overrides, preset, synthetic, no_wandb, init_from, strict, study, seeds, top, resplit):
    """Train a finished study's best trials again with more seeds; re-run to resume."""
    from avbench.catalog import load_experiment
    from avbench.context import RunContext
    from avbench.sweep.core import SweepRequest, study_name

    run_ctx = RunContext(results_dir(ctx), synthetic=synthetic, use_wandb=not no_wandb, preset=preset)
    # The sweep's own --set / --init-from / --strict: replicates train the trial's config.
    request = SweepRequest(experiment=experiment, overrides=with_init_from(with_strict(overrides, strict), init_from))
    loaded = load_experiment(experiment, preset=preset, overrides=request.overrides)
    name = study or study_name(loaded, preset, synthetic)
    replicate_best(run_ctx, request, name, make_console(), seeds=seeds, top=top, resplit=resplit)
