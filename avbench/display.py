"""Rich progress for sweeps (trials and epochs) and one-line summaries of runs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from avbench.results.records import RunRecord
from avbench.spec import split_metric

if TYPE_CHECKING:
    from avbench.sweep.core import SweepHooks


def short_names(keys) -> dict[str, str]:
    """Dotted keys by their last part, unless two share it (audeep's model_args.keep_prob and
    evaluation.keep_prob): those keep their full key."""
    keys = list(keys)
    last = [key.split(".")[-1] for key in keys]
    return {key: short if last.count(short) == 1 else key for key, short in zip(keys, last, strict=True)}


def format_values(values: dict) -> str:
    parts = []
    names = short_names(values)
    for key, value in values.items():
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        parts.append(f"{names[key]}={shown}")
    return " ".join(parts)


def summarize(record: RunRecord) -> str:
    if record.status == "failed":
        return f"[red]failed[/red]: {escape(record.error or '')}"
    if record.status == "infeasible":  # a sweep's suggestion the model cannot be built with
        return f"infeasible, skipped untrained: {escape(record.error or '')}"
    val = record.val.get(record.metric)
    line = f"{record.status} val/{record.metric}={val:.4f}" if val is not None else record.status
    # Every head's test metrics (`emotion/acc`, `state/acc`, …) for a multi-head run.
    prefixes = [f"{head}/" for head, base in map(split_metric, record.test) if head and base == "acc"] or [""]
    for prefix in prefixes if record.test else []:
        for metric in (f"{prefix}acc", f"{prefix}uar"):
            std = record.test.get(f"{metric}_std")  # over folds, when the run cross-validated
            line += f" test/{metric}={record.test[metric]:.4f}" + (f" ± {std:.4f}" if std is not None else "")
    knn = record.data_scores.get("knn", {}).get("test")
    if knn:  # the probe's untrained yardstick, on the same embeddings
        line += f" kNN test/acc={knn['acc']:.4f}"
    return line + f" ({record.epochs_run} epochs, {record.wall_time_s:.0f}s)"


def counted_bars(console: Console, **options) -> Progress:
    """Bars a sweep shows: name, bar, done/total, time, and a free `info` field."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        **options,
    )


class SweepDisplay:
    """Two bars: finished trials out of the target, and epochs of the running trial."""

    def __init__(self, console: Console, total_trials: int, finished: int, epochs: int):
        self.console = console
        self.epochs = epochs
        self.progress = counted_bars(console, transient=False)
        self.trials = self.progress.add_task("trials", total=total_trials, completed=finished, info="")
        self.epoch_bar = self.progress.add_task("epochs", total=epochs, info="")
        self.feature_bar = None

    def __enter__(self) -> SweepDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def features(self, done: int, total: int) -> None:
        """A third bar while a trial fills the feature cache (terminals only); gone when full."""
        if not self.console.is_terminal:
            return
        if self.feature_bar is None:
            self.feature_bar = self.progress.add_task("features", total=total, info="decoding, cached for every trial")
        self.progress.update(self.feature_bar, completed=done, total=total)
        if done >= total:
            self.progress.remove_task(self.feature_bar)
            self.feature_bar = None

    def trial_start(self, number: int | None, values: dict) -> None:
        self.progress.reset(self.epoch_bar, total=self.epochs, info=f"trial {number}: {format_values(values)}")

    def epoch(self, epoch: int, metrics: dict) -> None:
        shown = {k: v for k, v in metrics.items() if k.startswith("val/") and k not in ("val/loss", "val/examples")}
        self.progress.update(self.epoch_bar, completed=epoch, info=format_values(shown))

    def trial_end(self, record: RunRecord) -> None:
        if record.status in ("completed", "pruned"):
            self.progress.advance(self.trials)
        values = escape(f"[{format_values(record.searched)}]")
        self.console.print(f"trial {record.trial} {values}: {summarize(record)}")


@contextlib.contextmanager
def feature_progress(console: Console) -> Iterator[Callable[[int, int], None] | None]:
    """A progress callback for filling the feature cache: a rich bar on a terminal, shown only
    while files are decoded; None (no bar, nothing printed) in logs and pipes."""
    if not console.is_terminal:
        yield None
        return
    progress = Progress(
        TextColumn("features"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True
    )
    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            progress.start()
            bar = progress.add_task("features", total=total)
        progress.update(bar, completed=done, total=total)
        if done >= total:
            progress.stop()

    try:
        yield update
    finally:
        progress.stop()


class ConsoleView:
    """Where a sweep shows itself: lines, and the live bars while trials train in this process
    (the --workers parent draws its own from the console)."""

    def __init__(self, console: Console):
        self.console = console

    @classmethod
    def silent(cls) -> ConsoleView:
        return cls(Console(quiet=True))

    def say(self, line: str) -> None:
        self.console.print(line, soft_wrap=True)

    @contextlib.contextmanager
    def trials(self, target: int, finished: int, epochs: int) -> Iterator[SweepHooks]:
        """The hooks that draw the bars, while they are shown."""
        from avbench.sweep.core import SweepHooks

        if self.console.quiet:  # nothing to draw: no live display (and no refresh thread)
            yield SweepHooks()
            return
        with SweepDisplay(self.console, target, finished, epochs) as display:
            yield SweepHooks(
                trial_start=display.trial_start,
                epoch=display.epoch,
                trial_end=display.trial_end,
                features=display.features,
            )
