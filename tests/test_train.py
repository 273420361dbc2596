"""fit() through the recipes: seeded repeatability, best-epoch restore, resume parity after a
SIGKILL, the optimizers and bf16 autocast it claims, failures."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from avbench.catalog import load_experiment
from avbench.config import TrainConfig
from avbench.context import RunContext, TrialInfo
from avbench.recipes import run_recipe
from avbench.results.layout import run_dir
from avbench.train.metrics import classification_metrics

pytestmark = pytest.mark.heavy  # minutes of sweeps: scheduled first (tests/conftest.py)

PROBE = Path(__file__).parent / "resume_probe.py"
VALUES = {"train.lr": 3e-3, "train.batch_size": 16, "train.optimizer": "adam"}


def tiny_config(**overrides):
    loaded = load_experiment(
        "spectrogram-cnn-cremad", preset="tiny", overrides=[f"{k}={v}" for k, v in overrides.items()]
    )
    return loaded.resolve({k: v for k, v in VALUES.items() if k in loaded.searched})


def run(config, workspace, **trial):
    return run_recipe(
        config, RunContext(workspace / "results", synthetic=True, use_wandb=False), trial=TrialInfo(**trial)
    )


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
    first = run(tiny_config(), workspace)
    second = run(tiny_config(), workspace)
    assert first.status == second.status == "completed"
    assert first.val == second.val and first.test == second.test
    # The second run decoded nothing: every file's features came from the cache.
    assert second.cache["decoded"] == second.cache["misses"] == 0 and second.cache["hit_rate"] == 1.0
    assert second.cache["hits"] == sum(second.data_sizes.values())


def test_record_holds_what_a_reader_needs(workspace):
    record = run(tiny_config(**{"train.epochs": 3}), workspace)
    folder = run_dir(workspace / "results", record.experiment, record.run_id)
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


def test_a_run_checks_model_args_and_resolves_inputs_once(workspace, monkeypatch):
    import avbench.models
    import avbench.preflight

    calls = {"check_model_args": 0, "with_model_inputs": 0}
    for module, name in ((avbench.models, "check_model_args"), (avbench.preflight, "with_model_inputs")):
        original = getattr(module, name)

        def counted(experiment, _original=original, _name=name):
            calls[_name] += 1
            return _original(experiment)

        monkeypatch.setattr(module, name, counted)
    overrides = ["train.epochs=1", "train.lr=3e-3", "train.weight_decay=0", "model_args.dropout=0.1"]
    record = run(load_experiment("mel-stats-mlp-cremad", preset="tiny", overrides=overrides).resolve({}), workspace)
    assert record.status == "completed" and calls == {"check_model_args": 1, "with_model_inputs": 1}


def test_early_stopping_restores_the_best_epoch(workspace):
    # lr so small the model never improves after its first epoch: patience 1 stops at epoch 2.
    record = run(tiny_config(**{"train.epochs": 6, "train.patience": 1, "train.lr": 1e-12}), workspace)
    assert record.stopped == "early_stopped" and record.epochs_run == 2 and record.best_epoch == 1


def test_resume_continues_from_the_last_epoch_checkpoint(workspace):
    config = tiny_config(**{"train.epochs": 3})

    def crash_after_two(epoch, metrics):
        if epoch == 2:
            raise KeyboardInterrupt

    ctx = RunContext(workspace / "results", synthetic=True, use_wandb=False)
    with pytest.raises(KeyboardInterrupt):
        run_recipe(config, ctx, trial=TrialInfo(run_id="r1"), on_eval=crash_after_two)
    folder = run_dir(workspace / "results", config.name, "r1")
    assert json.loads((folder / "record.json").read_text())["status"] == "interrupted"
    assert torch.load(folder / "last.pt", weights_only=True)["epoch"] == 2
    resumed = run(config, workspace, run_id="r1")
    assert resumed.status == "completed" and resumed.resumed_from_epoch == 2
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


# Dropout, a cosine schedule, weight decay and a shuffled loader of several batches: every
# random or running state a resume could lose changes the numbers if it is lost.
PARITY = {
    "train.epochs": 5,
    "train.patience": 4,
    "train.batch_size": 8,
    "train.lr": 3e-3,
    "train.weight_decay": 0.01,
    "model_args.dropout": 0.3,
}


def without_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in epoch.items() if k != "epoch_time_s"} for epoch in history]


# Waveform, spectrogram and batch augmentation: the generator's state must come back too.
AUGMENTED = {
    "augment.noise_p": 0.5,
    "augment.noise_colour": "random",
    "augment.eq_p": 0.5,
    "augment.gain_db": 6,
    "augment.freq_masks": 1,
    "augment.mixup_alpha": 0.4,
}


@pytest.mark.parametrize("augment", [{}, AUGMENTED], ids=["plain", "augmented"])
def test_a_run_killed_after_epoch_two_resumes_to_the_same_metrics(workspace, augment):
    overrides = [f"{k}={v}" for k, v in {**PARITY, **augment}.items()]
    config = load_experiment("mel-stats-mlp-cremad", preset="tiny", overrides=overrides).resolve({})
    never_killed = run(config, workspace, run_id="whole")
    killed = subprocess.run(
        [sys.executable, str(PROBE), "killed", "2", str(torch.get_num_threads())] + [json.dumps(overrides)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    folder = run_dir(workspace / "results", config.name, "killed")
    assert torch.load(folder / "last.pt", weights_only=True)["epoch"] == 2
    resumed = run(config, workspace, run_id="killed")
    assert resumed.status == never_killed.status == "completed" and resumed.resumed_from_epoch == 2
    history = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    whole = run_dir(workspace / "results", config.name, "whole") / "metrics.jsonl"
    assert without_times(history) == without_times([json.loads(line) for line in whole.read_text().splitlines()])
    assert (resumed.val, resumed.test, resumed.best_epoch) == (
        never_killed.val,
        never_killed.test,
        never_killed.best_epoch,
    )


def test_nan_loss_is_a_failed_record_not_a_crash(workspace):
    config = tiny_config(**{"train.optimizer": "sgd"})
    config.train.lr = 1e30
    record = run(config, workspace)
    assert record.status == "failed" and "loss became" in record.error


class Probe(nn.Module):
    """A linear classifier on `x` that notes, on every forward, the dtype autocast computes in."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 2)
        self.seen: list[tuple[bool, torch.dtype, torch.dtype]] = []

    def forward(self, batch: dict) -> torch.Tensor:
        out = self.linear(batch["x"])
        self.seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"), out.dtype))
        return out


def probe_loaders() -> dict:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(24, 4, generator=generator)
    rows = [{"x": row, "label": int(row[0] > 0)} for row in x]
    return {
        name: torch.utils.data.DataLoader(rows, batch_size=8, shuffle=name == "train")
        for name in ("train", "val", "test")
    }


def fit_probe(cfg: TrainConfig, mixed_precision: str = "no", checkpoint_dir=None) -> Probe:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from avbench.train.loop import fit

    AcceleratorState._reset_state()
    torch.manual_seed(0)
    model = Probe()
    fit(
        model,
        probe_loaders(),
        cfg,
        Accelerator(mixed_precision=mixed_precision),
        num_classes=2,
        checkpoint_dir=checkpoint_dir,
    )
    return model


OPTIMIZERS = {
    # name → (class, the per-parameter state the optimizer keeps, decoupled weight decay)
    "adam": ("torch.optim.adam.Adam", {"step", "exp_avg", "exp_avg_sq"}, False),
    "adamw": ("torch.optim.adamw.AdamW", {"step", "exp_avg", "exp_avg_sq"}, True),
    "sgd": ("torch.optim.sgd.SGD", {"momentum_buffer"}, None),
    "lion": ("lion_pytorch.lion_pytorch.Lion", {"exp_avg"}, None),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_optimizer_is_the_one_named_and_moves_the_weights(tmp_path, name):
    from avbench.train.optim import build_optimizer

    cls, state_keys, decoupled = OPTIMIZERS[name]
    cfg = TrainConfig(epochs=1, lr=1e-2, optimizer=name, weight_decay=0.01, patience=0)
    built = build_optimizer(nn.Linear(2, 2).parameters(), cfg)
    named = next(c for c in type(built).__mro__ if not c.__module__.startswith("avbench."))  # under optim.eager
    assert f"{named.__module__}.{named.__name__}" == cls
    torch.manual_seed(0)
    before = {k: v.clone() for k, v in Probe().state_dict().items()}
    trained = fit_probe(cfg, checkpoint_dir=tmp_path)
    assert all(not torch.equal(before[k], v) for k, v in trained.state_dict().items())
    # What fit() stepped with, as its resume point saved it: that optimizer's own state.
    saved = torch.load(tmp_path / "last.pt", weights_only=True)["optimizer"]
    assert set(saved["state"][0]) == state_keys
    assert saved["param_groups"][0]["weight_decay"] == 0.01
    if decoupled is not None:
        assert saved["param_groups"][0]["decoupled_weight_decay"] is decoupled


def test_bf16_autocasts_the_forward_to_bfloat16_on_cpu():
    model = fit_probe(TrainConfig(epochs=1, patience=0), mixed_precision="bf16")
    assert model.seen and set(model.seen) == {(True, torch.bfloat16, torch.bfloat16)}
    plain = fit_probe(TrainConfig(epochs=1, patience=0))
    assert {dtype for _, _, dtype in plain.seen} == {torch.float32}
