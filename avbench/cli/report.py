"""`avbench report`: the static HTML page of results/ (avbench.report builds it)."""

from __future__ import annotations

from pathlib import Path

import click

from avbench.cli.support import results_dir


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for index.html [default: results/report].",
)
@click.pass_context
def report(ctx, out: Path | None) -> None:
    """Write a self-contained HTML report: leaderboards, studies, confusion matrices, provenance."""
    from avbench.report import write_report

    click.echo(f"report: {write_report(results_dir(ctx), out)}")
