"""`avbench data`: write synthetic stand-ins, inspect a dataset folder (splits, speakers, leaks)."""

from __future__ import annotations

from pathlib import Path

import click

from avbench.cli.support import SchemaDefault, make_console
from avbench.spec import STANDIN_SIZES


@click.group()
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
@click.option("--size", type=click.Choice(STANDIN_SIZES), cls=SchemaDefault, field="data.synth_size")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--domain-shift",
    is_flag=True,
    help="Shift the test split (pitch, channel, noise) from train/val, as corpora differ.",
)
def synth(task: str, out: Path | None, size: str, seed: int, domain_shift: bool) -> None:
    """Write TASK's synthetic stand-in in the dataset's published layout."""
    from avbench.registry import TASKS
    from avbench.tasks.standin import check_domain_shift, synthetic_root

    task_cls = TASKS.get(task)
    target = out or synthetic_root(task, size, domain_shift)
    if domain_shift:
        check_domain_shift(task)
    count = task_cls().synthesize(target, size=size, seed=seed, **({"domain_shift": True} if domain_shift else {}))
    click.echo(f"wrote {count} clips for {task} to {target} ({task_cls.layout})")


@data.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--task", default=None, help="The dataset's task [default: detected from the marker or the layout].")
@click.option(
    "--fold",
    type=click.IntRange(min=1),
    cls=SchemaDefault,
    field="data.fold",
    help="Test fold, for tasks with predefined folds (esc50, esc10) or with --folds.",
)
@click.option("--folds", type=click.IntRange(min=0), default=0, help="Speaker folds (data.folds; 0: 70/10/20).")
@click.option("--speaker-regex", default=None, help="Regex with one group: the speaker in a file name.")
@click.option("--split-seed", type=int, cls=SchemaDefault, field="data.split_seed")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON instead of tables.")
def inspect(
    path: Path, task: str | None, fold: int, folds: int, speaker_regex: str | None, split_seed: int, as_json: bool
) -> None:
    """Files, classes per split, durations, formats and every problem in a dataset folder."""
    from avbench.config import DataConfig
    from avbench.tasks.detection import inspect_dataset

    data_config = DataConfig(fold=fold, folds=folds, speaker_regex=speaker_regex, split_seed=split_seed)
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
    from avbench.data.leaks import summary_lines

    for line in summary_lines(report.leak_checks, report.leaks):
        console.print(line, markup=False, highlight=False)
    if not report.problems:
        console.print("no problems found")
        return
    problems = Table("file", "problem", title=f"{len(report.problems)} problem(s)")
    for where, reason in report.problems:
        problems.add_row(where, reason)
    console.print(problems)
