"""`avbench import ...`: another project's config written as an avbench experiment."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("import")
def import_group() -> None:
    """Write an avbench experiment from another project's config."""


@import_group.command("openav")
@click.argument("config_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the experiment [default: experiments/openav-<file name>.yaml].",
)
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
def openav(config_file: Path, out: Path | None, force: bool) -> None:
    """An OpenAV train config (train_audiovisual.yaml) as a commands/av-fusion experiment."""
    from avbench.importers.openav import import_openav

    written, imported = import_openav(config_file, out, force=force)
    click.echo(f"wrote {written} (task commands, model av-fusion)")
    for key, target in imported.mapped:
        click.echo(f"  {key} → {target}")
    for key, why in imported.unmapped:
        click.echo(f"  {key}: no equivalent ({why})")
    for name, path in imported.missing_files:
        click.echo(f"warning: {name}: {path} does not exist here; edit it in {written} or pass --set {name}=PATH")
    results = f"--results {imported.results} " if imported.results else ""
    click.echo(f"run it: avbench {results}run {written}")
