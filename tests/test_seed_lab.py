"""The wav2vec2 lab's view of a run: the device, one line per epoch with train and validation
loss / accuracy, a summary; train accuracy from the training loop itself; audiofolder
experiments for a folder of one's own categories."""

from __future__ import annotations

import io
import json

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from rich.console import Console
from torch import nn

from avbench.catalog import load_experiment
from avbench.cli.epochs import EpochReport
from avbench.config import TrainConfig
from avbench.train.loop import fit


class Fixed(nn.Module):
    """Logits = the input: its predictions are known before training."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, batch: dict) -> torch.Tensor:
        return batch["audio"] * self.scale


def test_train_accuracy_comes_from_the_training_loop() -> None:
    generator = torch.Generator().manual_seed(0)
    inputs, labels = torch.randn(30, 3, generator=generator), torch.randint(0, 3, (30,), generator=generator)
    examples = [{"audio": inputs[i], "label": labels[i]} for i in range(30)]
    loaders = {split: torch.utils.data.DataLoader(examples, batch_size=4) for split in ("train", "val", "test")}
    AcceleratorState._reset_state()
    config = TrainConfig(epochs=2, lr=1e-12, optimizer="sgd", momentum=0.0, patience=0)
    result = fit(Fixed(), loaders, config, Accelerator(cpu=True), num_classes=3)
    expected = float((inputs.argmax(-1) == labels).float().mean())
    assert [m["train/acc"] for m in result.history] == pytest.approx([expected, expected])
    assert result.history[0]["val/acc"] == pytest.approx(expected)


def test_run_prints_device_epochs_and_a_summary(cli, workspace) -> None:
    result = cli(
        "run",
        "mel-stats-mlp-cremad",
        "--preset",
        "tiny",
        "--synthetic",
        "--no-wandb",
        "--set",
        "train.lr=3e-3",
        "--set",
        "model_args.dropout=0.1",
        "--set",
        "train.weight_decay=0",
    )
    lines = result.output.splitlines()
    assert lines[0].startswith("mel-stats-mlp-cremad: device cpu") and "precision no" in lines[0]
    folder = next((workspace / "results" / "runs" / "mel-stats-mlp-cremad").iterdir())
    history = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    for metrics in history:
        shown = (
            f"epoch {metrics['epoch']}/3  {metrics['epoch_time_s']:.1f}s  train loss {metrics['train/loss']:.4f} "
            f"acc {metrics['train/acc']:.4f}  val loss {metrics['val/loss']:.4f} acc {metrics['val/acc']:.4f}"
        )
        assert shown in lines
    mean_acc = sum(m["train/acc"] for m in history) / len(history)
    assert any(line.startswith("3 epochs in ") and f"mean train acc {mean_acc:.4f}" in line for line in lines)
    record = json.loads((folder / "record.json").read_text())
    assert f"best epoch {record['best_epoch']} of 3 (completed)" in result.output
    assert f"test acc {record['test']['acc']:.4f}" in result.output


def test_a_terminal_gets_the_same_columns_as_a_live_table() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    metrics = {"epoch": 1, "epoch_time_s": 2.5, "train/loss": 1.25, "train/acc": 0.5, "val/loss": 1.5, "val/acc": 0.375}
    with EpochReport(console, epochs=2) as report:
        assert report(1, metrics) is False
        report(2, {**metrics, "epoch": 2, "val/acc": 0.625})
    text = out.getvalue()
    for shown in ("train acc", "val loss", "1.2500", "0.3750", "0.6250", "2.5"):
        assert shown in text
    assert "epoch 1/2" not in text  # the table, not the plain lines


@pytest.mark.parametrize("command, name", [("run", "wav2vec2-audiofolder"), ("sweep", "spectrogram-cnn-audiofolder")])
def test_audiofolder_experiments_run_on_the_stand_in(cli, workspace, command, name) -> None:
    values = {"train.lr": 1e-3, "train.batch_size": 8, "train.optimizer": "adam"}
    searched = load_experiment(name).searched
    sets = (
        [arg for key in searched for arg in ("--set", f"{key}={values[key]}")]
        if command == "run"
        else ["--trials", "1"]
    )
    result = cli(command, name, "--preset", "tiny", "--synthetic", "--no-wandb", "--set", "train.epochs=1", *sets)
    records = list((workspace / "results" / "runs" / name).glob("*/record.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["status"] == "completed", result.output
