"""What `avbench run` shows while it trains: the device and precision, one line per epoch
(seconds, train loss / accuracy, validation loss / accuracy), and a summary at the end, as
the wav2vec2 lab's notebook printed them. Logs and pipes get plain lines; a terminal gets the
same columns as a live table."""

from __future__ import annotations

from rich.console import Console
from rich.live import Live
from rich.table import Table

from avbench.config import Experiment
from avbench.results.records import RunRecord

COLUMNS = (
    ("epoch", "epoch"),
    ("seconds", "epoch_time_s"),
    ("train loss", "train/loss"),
    ("train acc", "train/acc"),
    ("val loss", "val/loss"),
    ("val acc", "val/acc"),
)


def device_line(experiment: Experiment) -> str:
    """The device this process trains on (as Accelerate picks it) and the mixed precision."""
    import torch

    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)})"
    elif torch.backends.mps.is_available():
        device = "mps"
    else:
        device = f"cpu ({torch.get_num_threads()} threads)"
    from avbench.train.fast import cuda_precision_support, resolve_precision

    device_type, bf16 = cuda_precision_support()
    precision = resolve_precision(experiment.train.mixed_precision, device_type=device_type, bf16_supported=bf16)
    return f"device {device}, precision {precision}, up to {experiment.train.epochs} epochs"


def _cell(key: str, metrics: dict) -> str:
    value = metrics.get(key)
    if value is None:
        return "–"
    if key == "epoch":
        return str(value)
    return f"{value:.1f}" if key == "epoch_time_s" else f"{value:.4f}"


def epoch_line(metrics: dict, epochs: int) -> str:
    """'epoch 2/10  3.1s  train loss 1.2345 acc 0.5000  val loss 1.3000 acc 0.4500'."""
    line = f"epoch {metrics['epoch']}/{epochs}  {_cell('epoch_time_s', metrics)}s"
    for split in ("train", "val"):
        line += f"  {split} loss {_cell(f'{split}/loss', metrics)}"
        if f"{split}/acc" in metrics:
            line += f" acc {_cell(f'{split}/acc', metrics)}"
    return line


def summary_lines(record: RunRecord, history: list[dict]) -> list[str]:
    """The lab's totals over the epochs shown (training time, mean train loss / accuracy), then
    the best epoch with its validation score and the test metrics."""
    if record.status not in ("completed", "pruned") or not record.epochs_run:
        return []
    lines = []
    if history:
        seconds = sum(m.get("epoch_time_s", 0.0) for m in history)
        totals = f"{len(history)} epochs in {seconds:.1f}s"
        for key in ("train/loss", "train/acc"):
            values = [m[key] for m in history if key in m]
            if values:
                totals += f", mean {key.replace('/', ' ')} {sum(values) / len(values):.4f}"
        lines.append(totals)
    selected = record.val.get(record.metric)
    shown = f", val/{record.metric} {selected:.4f}" if isinstance(selected, int | float) else ""
    lines.append(f"best epoch {record.best_epoch} of {record.epochs_run} ({record.stopped}){shown}")
    tested = [f"{key} {record.test[key]:.4f}" for key in ("acc", "uar", "macro_f1") if key in record.test]
    if tested:
        lines.append("test " + ", ".join(tested))
    return lines


class EpochReport:
    """An `on_eval` callback that shows every epoch; never asks the run to stop. The `header`
    (the device line) comes with the first epoch, so a run stopped by its checks before training
    prints its one error line alone."""

    def __init__(self, console: Console, epochs: int, header: str | None = None):
        self.console = console
        self.epochs = epochs
        self.header = header
        self.table: Table | None = None
        self.live: Live | None = None
        self.history: list[dict] = []  # every epoch shown, for the summary

    def __enter__(self) -> EpochReport:
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.stop()

    def __call__(self, epoch: int, metrics: dict) -> bool:
        if self.header is not None and not self.history:
            self.console.print(self.header)
        self.history.append(metrics)
        if not self.console.is_terminal:
            self.console.print(epoch_line(metrics, self.epochs))
            return False
        if self.live is None:
            self.table = Table(*(title for title, _ in COLUMNS))
            self.live = Live(self.table, console=self.console, auto_refresh=False)
            self.live.start()
        self.table.add_row(*(_cell(key, metrics) for _, key in COLUMNS))
        self.live.refresh()
        return False
