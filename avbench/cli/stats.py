"""`avbench compare` and `avbench control`: the numbers beside a leaderboard row.

Only click at module level.
"""

from __future__ import annotations

import json

import click

from avbench.cli.support import common_run_options, count_option, make_console, results_dir, with_init_from, with_strict


@click.command()
@click.argument("experiment_a")
@click.argument("experiment_b")
@click.option("--metric", type=click.Choice(["acc", "uar", "macro_f1"]), default="acc", show_default=True)
@click.option("--synthetic", is_flag=True, help="Compare the runs on the synthetic stand-in [default: real data].")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def compare(ctx, experiment_a: str, experiment_b: str, metric: str, synthetic: bool, fmt: str) -> None:
    """A − B on the same test clips: paired bootstrap 95 % CI and McNemar's exact p."""
    from avbench.results.compare import compare as compare_runs

    result = compare_runs(
        results_dir(ctx), experiment_a, experiment_b, metric=metric, data="synthetic" if synthetic else "real"
    )
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    low, high = result.ci95
    console = make_console()
    for side in (result.a, result.b):
        console.print(
            f"{side.experiment}: test/{metric} {side.score:.4f} over {side.runs} run(s) (selected {side.run_id})"
        )
    console.print(
        f"difference A − B: {result.difference:+.4f}, 95 % CI [{low:+.4f}, {high:+.4f}] "
        f"(paired bootstrap over {result.n_clips} clips); McNemar exact p = {result.p_value:.4g}"
    )


@click.command()
@common_run_options
@count_option("--seeds", default=1, help="Control runs (train.seed + i), for an interval beside the real row's.")
@click.pass_context
def control(ctx, experiment, overrides, preset, synthetic, no_wandb, init_from, strict, seeds) -> None:
    """Train EXPERIMENT's val-selected config on shuffled training labels (the leaderboard's control)."""
    from avbench.catalog import load_experiment
    from avbench.context import RunContext
    from avbench.display import summarize
    from avbench.sweep.controls import run_controls

    run_ctx = RunContext(results_dir(ctx), synthetic=synthetic, use_wandb=not no_wandb, preset=preset)
    # The sweep's own --set / --init-from / --strict: the control trains the selected run's config.
    loaded = load_experiment(
        experiment, preset=preset, overrides=with_init_from(with_strict(overrides, strict), init_from)
    )
    console = make_console()
    best, trained = run_controls(
        loaded, run_ctx, seeds=seeds, on_end=lambda r: console.print(f"{r.run_id}: {summarize(r)}")
    )
    console.print(f"control of {best.run_id}: {len(trained)} trained now, {seeds} in all; see `avbench leaderboard`")
