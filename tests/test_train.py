"""fit() through the runner: seeded repeatability, best-epoch restore, resume, failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avbench.catalog import load_experiment
from avbench.results.records import run_dir
from avbench.runner import run_experiment
from avbench.train.metrics import classification_metrics

VALUES = {"train.lr": 3e-3, "train.batch_size": 16, "train.optimizer": "adam"}


def tiny_config(**overrides):
    loaded = load_experiment(
        "spectrogram-cnn-cremad", preset="tiny", overrides=[f"{k}={v}" for k, v in overrides.items()]
    )
    return loaded.resolve({k: v for k, v in VALUES.items() if k in loaded.searched})


def test_metrics_against_hand_computed_values():
    labels = np.array([0, 0, 1, 1, 2, 2])
    preds = np.array([0, 1, 1, 1, 0, 2])
    m = classification_metrics(labels, preds, 3)
    assert m["acc"] == pytest.approx(4 / 6)
    assert m["uar"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    f1 = [2 * 0.5 * 0.5 / 1.0, 2 * (2 / 3) * 1 / (2 / 3 + 1), 2 * 1 * 0.5 / 1.5]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_same_seed_gives_the_same_metrics(workspace):
    results = workspace / "results"
    first = run_experiment(tiny_config(), results=results, synthetic=True, use_wandb=False)
    second = run_experiment(tiny_config(), results=results, synthetic=True, use_wandb=False)
    assert first.status == second.status == "completed"
    assert first.val == second.val and first.test == second.test
    # The second run decoded nothing: every file's features came from the cache.
    assert second.cache["decoded"] == second.cache["misses"] == 0 and second.cache["hit_rate"] == 1.0
    assert second.cache["hits"] == sum(second.data_sizes.values())


def test_record_holds_what_a_reader_needs(workspace):
    results = workspace / "results"
    record = run_experiment(tiny_config(**{"train.epochs": 3}), results=results, synthetic=True, use_wandb=False)
    folder = run_dir(results, record.experiment, record.run_id)
    saved = json.loads((folder / "record.json").read_text())
    assert saved["status"] == "completed" and saved["data_kind"] == "synthetic"
    assert set(saved["test"]) >= {"acc", "uar", "macro_f1", "confusion", "loss"}
    assert saved["versions"]["torch"].startswith("2.11") and saved["params"] > 0
    assert saved["data_sizes"]["train"] > 0 and saved["wall_time_s"] > 0
    epochs = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    best = max(epochs, key=lambda e: e["val/acc"])
    assert saved["val"]["acc"] == best["val/acc"]
    assert (folder / "best.pt").exists() and not (folder / "last.pt").exists()
    state = torch.load(folder / "best.pt", weights_only=True)
    assert state["epoch"] == saved["best_epoch"]
    assert "train:" in (folder / "config.yaml").read_text()


def test_early_stopping_restores_the_best_epoch(workspace):
    # lr so small the model never improves after its first epoch: patience 1 stops at epoch 2.
    config = tiny_config(**{"train.epochs": 6, "train.patience": 1, "train.lr": 1e-12})
    record = run_experiment(config, results=workspace / "results", synthetic=True, use_wandb=False)
    assert record.stopped == "early_stopped" and record.epochs_run == 2 and record.best_epoch == 1


def test_resume_continues_from_the_last_epoch_checkpoint(workspace):
    results = workspace / "results"
    config = tiny_config(**{"train.epochs": 3})

    def crash_after_two(epoch, metrics):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, results=results, synthetic=True, use_wandb=False, run_id="r1", on_eval=crash_after_two)
    folder = run_dir(results, config.name, "r1")
    assert json.loads((folder / "record.json").read_text())["status"] == "interrupted"
    assert torch.load(folder / "last.pt", weights_only=True)["epoch"] == 2
    resumed = run_experiment(config, results=results, synthetic=True, use_wandb=False, run_id="r1")
    assert resumed.status == "completed" and resumed.resumed_from_epoch == 2
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def test_nan_loss_is_a_failed_record_not_a_crash(workspace):
    config = tiny_config(**{"train.optimizer": "sgd"})
    config.train.lr = 1e30
    record = run_experiment(config, results=workspace / "results", synthetic=True, use_wandb=False)
    assert record.status == "failed" and "loss became" in record.error


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "lion"])
def test_every_optimizer_trains(workspace, optimizer):
    config = tiny_config(**{"train.epochs": 1, "train.optimizer": optimizer, "train.weight_decay": 0.01})
    record = run_experiment(config, results=workspace / "results", synthetic=True, use_wandb=False)
    assert record.status == "completed", record.error


def test_bf16_mixed_precision_runs_on_cpu(workspace):
    config = tiny_config(**{"train.epochs": 1, "train.mixed_precision": "bf16"})
    record = run_experiment(config, results=workspace / "results", synthetic=True, use_wandb=False)
    assert record.status == "completed", record.error
