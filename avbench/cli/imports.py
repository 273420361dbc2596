"""`avbench import openav | emotions-classify` and `avbench pipeline`: bring a seed project's config over."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from avbench.cli.support import FILE, FOLDER, results_dir


@click.group("import")
def import_group() -> None:
    """Convert a seed project's config files into avbench experiments."""


@import_group.command("openav")
@click.argument("config_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=FILE,
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


def _convert(file: Path, root_dir: Path | None, pretrained: Path | None):
    from avbench.importers.emotions_classify import convert

    return convert(file, (root_dir or Path.cwd()).resolve(), pretrained.resolve() if pretrained else None)


ROOT_DIR_HELP = (
    "The seed's $$ROOT_DIR$$: its checkout, with data/dataset/annotations.json [default: the current folder]."
)
PRETRAINED_HELP = (
    "A local copy of the seed's wav2vec2 (Eyvaz/wav2vec2-base-russian-demo-kaggle): frozen, as the seed ran."
)


@import_group.command("emotions-classify")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--out", type=FOLDER, default=Path("."), show_default=True)
@click.option("--root-dir", type=FOLDER, default=None, help=ROOT_DIR_HELP)
@click.option("--pretrained", type=click.Path(exists=True, path_type=Path), default=None, help=PRETRAINED_HELP)
def emotions_classify(file: Path, out: Path, root_dir: Path | None, pretrained: Path | None) -> None:
    """Turn FILE.json's pipeline steps into experiments (OUT/experiments), sweep files (OUT/sweeps)
    and the step list (OUT/pipeline.yaml) that `avbench pipeline OUT` runs."""
    from avbench.importers.pipeline import write_steps

    steps = _convert(file, root_dir, pretrained)
    plan = write_steps(steps, out)
    for step in steps:
        click.echo(f"{step.command:5s} {step.experiment}")
        if step.unmapped:
            click.echo(f"      no equivalent: {', '.join(step.unmapped)}")
    click.echo("(checkpoints, logs and tune results of every step go to results/runs/<experiment>/)")
    click.echo(f"wrote {len(steps)} step(s): {plan}")


@click.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out", type=FOLDER, default=None, help="Where a FILE.json is imported first [default: results/pipelines/<file>]."
)
@click.option("--root-dir", type=FOLDER, default=None, help=ROOT_DIR_HELP)
@click.option("--pretrained", type=click.Path(exists=True, path_type=Path), default=None, help=PRETRAINED_HELP)
@click.option("--preset", default=None, help="A preset every step's experiment has (imported ones have tiny).")
@click.option("--synthetic", is_flag=True, help="Train on the task's synthetic stand-in.")
@click.option("--no-wandb", is_flag=True, help="Do not log to Weights & Biases.")
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a field of every run/sweep step."
)
@click.pass_context
def pipeline(ctx, source, out, root_dir, pretrained, preset, synthetic, no_wandb, overrides) -> None:
    """Run a pipeline's steps in order: SOURCE is an emotions-classify FILE.json (imported first,
    path macros expanded) or a folder written by `avbench import emotions-classify`."""
    from avbench.importers.pipeline import run_plan, write_steps

    folder = source
    if source.is_file():
        folder = out or results_dir(ctx) / "pipelines" / source.name.removesuffix(".json")
        write_steps(_convert(source, root_dir, pretrained), folder)
    options = [*(["--preset", preset] if preset else []), *(["--synthetic"] if synthetic else [])]
    options += [*(["--no-wandb"] if no_wandb else []), *(arg for o in overrides for arg in ("--set", o))]
    outcomes = run_plan(folder, results_dir(ctx), options, click.echo)
    failed = [f"{command} {name}" for command, name, status in outcomes if status != 0]
    click.echo(f"pipeline: {len(outcomes) - len(failed)} of {len(outcomes)} step(s) succeeded")
    if failed:
        click.echo(f"failed: {'; '.join(failed)}", err=True)
        sys.exit(1)
