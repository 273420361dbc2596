"""`avbench sync` and `avbench leaderboard --wandb`: results/ to W&B (avbench.wandb_sync)."""

from __future__ import annotations

import click

from avbench.cli.support import results_dir


@click.command()
@click.option(
    "--dry-run", is_flag=True, help="List the runs not yet synced and the wandb sync command; upload nothing."
)
@click.option("--timeout", type=click.FloatRange(min=1), default=600, show_default=True, help="Seconds to wait.")
@click.pass_context
def sync(ctx, dry_run: bool, timeout: float) -> None:
    """Upload every offline W&B run under results/ that is not synced yet (wraps `wandb sync`)."""
    from avbench.wandb_sync import offline_runs, pending_runs, sync_command, sync_runs

    results = results_dir(ctx)
    pending = pending_runs(results)
    synced = len(offline_runs(results)) - len(pending)
    if not pending:
        click.echo(f"nothing to sync: {synced} offline run(s) under {results} already synced")
        return
    if dry_run:
        for run in pending:
            click.echo(f"would sync {run}")
        click.echo(f"command: {' '.join(sync_command(pending))}")
        return
    sync_runs(pending, timeout=timeout)
    click.echo(f"synced {len(pending)} run(s); {synced} were synced already")


def log_leaderboard_rows(results, rows) -> None:
    from avbench.wandb_sync import log_leaderboard

    for project, run_id in log_leaderboard(results, rows):
        click.echo(f"logged the leaderboard to W&B project {project} (run {run_id})", err=True)
