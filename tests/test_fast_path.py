"""The fast path's settings on CPU: how `auto` precision and loader workers resolve per
device, torch.compile through the real loop, and last.pt every `checkpoint_every` epochs with
a resume from it still exact."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import ValidationError

from avbench.config import TrainConfig
from avbench.train.fast import loader_options, resolve_num_workers, resolve_precision
from tests.conftest import TINY, TINY_VALUES, run_avbench
from tests.test_train import Probe


@pytest.mark.parametrize(
    ("asked", "device", "bf16", "resolved"),
    [
        ("auto", "cuda", True, "bf16"),
        ("auto", "cuda", False, "fp16"),
        ("auto", "cpu", False, "no"),
        ("bf16", "cpu", False, "bf16"),  # asked for: kept
        ("no", "cuda", True, "no"),
    ],
)
def test_auto_precision_is_bf16_where_supported_fp16_on_older_gpus_and_fp32_on_cpu(asked, device, bf16, resolved):
    assert resolve_precision(asked, device_type=device, bf16_supported=bf16) == resolved


def test_auto_loader_workers_share_the_cores_on_a_gpu_and_are_none_on_cpu():
    assert resolve_num_workers("auto", device_type="cpu", cores=16) == 0
    assert resolve_num_workers("auto", device_type="cuda", cores=16) == 8  # capped
    assert resolve_num_workers("auto", device_type="cuda", cores=16, processes=4) == 3
    assert resolve_num_workers("auto", device_type="cuda", cores=1) == 0
    assert resolve_num_workers(2, device_type="cpu") == 2
    assert loader_options("auto", device_type="cuda") | {"num_workers": 0} == {
        "num_workers": 0,
        "persistent_workers": resolve_num_workers("auto", device_type="cuda") > 0,
        "pin_memory": True,
    }
    assert loader_options(0, device_type="cpu") == {"num_workers": 0, "persistent_workers": False, "pin_memory": False}


def test_the_schema_takes_auto_workers_and_refuses_nonsense():
    assert TrainConfig(num_workers="auto").num_workers == "auto"
    assert TrainConfig().mixed_precision == "auto" and TrainConfig().checkpoint_every == 1
    for bad in ({"num_workers": -1}, {"num_workers": "many"}, {"checkpoint_every": 0}):
        with pytest.raises(ValidationError):
            TrainConfig(**bad)


def seeded_loaders() -> dict:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(24, 4, generator=generator)
    rows = [{"x": row, "label": int(row[0] > 0)} for row in x]
    return {
        name: torch.utils.data.DataLoader(
            rows, batch_size=8, shuffle=name == "train", generator=torch.Generator().manual_seed(1)
        )
        for name in ("train", "val", "test")
    }


def fit_seeded(cfg: TrainConfig, checkpoint_dir, on_eval=None, **accelerator_options) -> Probe:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from avbench.train.loop import fit

    AcceleratorState._reset_state()
    torch.manual_seed(0)
    model = Probe()
    accelerator = Accelerator(**accelerator_options)
    fit(model, seeded_loaders(), cfg, accelerator, num_classes=2, checkpoint_dir=checkpoint_dir, on_eval=on_eval)
    return model


def test_last_pt_every_checkpoint_every_epochs_and_a_resume_from_it_is_exact(tmp_path):
    cfg = TrainConfig(epochs=4, patience=0, lr=0.05, checkpoint_every=2)
    seen: list[int | None] = []

    def kill_after_epoch_3(epoch: int, _metrics: dict) -> None:
        last = tmp_path / "killed" / "last.pt"
        seen.append(torch.load(last, weights_only=True)["epoch"] if last.exists() else None)
        if epoch == 3:
            raise KeyboardInterrupt  # killed before epoch 3 reached a resume point

    with pytest.raises(KeyboardInterrupt):
        fit_seeded(cfg, tmp_path / "killed", kill_after_epoch_3)
    assert seen == [None, 2, 2]
    resumed = fit_seeded(cfg, tmp_path / "killed")
    straight = fit_seeded(cfg, tmp_path / "straight")
    assert torch.load(tmp_path / "killed" / "last.pt", weights_only=True)["epoch"] == 4
    for key, value in straight.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key
    best = [torch.load(tmp_path / run / "best.pt", weights_only=True) for run in ("killed", "straight")]
    assert best[0]["epoch"] == best[1]["epoch"]


def test_compile_trains_through_the_loop_and_keeps_plain_checkpoint_names(tmp_path):
    model = fit_seeded(TrainConfig(epochs=1, patience=0), tmp_path, dynamo_backend="aot_eager")
    saved = torch.load(tmp_path / "last.pt", weights_only=True)["model"]
    assert set(saved) == set(model.state_dict()) == {"linear.weight", "linear.bias"}


def test_a_run_says_which_precision_and_devices_trained_it(workspace):
    args = (
        "run",
        "mel-stats-mlp-cremad",
        *TINY,
        *TINY_VALUES,
        "--set",
        "model_args.dropout=0.1",
        "--set",
        "train.weight_decay=0",
    )
    result = run_avbench(*args, "--set", "train.epochs=1", "--no-wandb", cwd=workspace)
    assert result.returncode == 0, result.stdout + result.stderr
    (record_file,) = (workspace / "results" / "runs" / "mel-stats-mlp-cremad").glob("*/record.json")
    record = json.loads(record_file.read_text())
    assert record["status"] == "completed" and record["precision"] == "no"  # auto on CPU: fp32
    assert record["processes"] == 1 and "visible" in record["devices"]


def test_checkpoint_every_does_not_make_a_different_study(workspace):
    from avbench.catalog import load_experiment
    from avbench.sweep.core import config_fingerprint
    from avbench.sweep.space import resolve_space

    def fingerprint(*overrides: str) -> str:
        loaded = load_experiment("spectrogram-cnn-cremad", preset="tiny", overrides=overrides)
        return config_fingerprint(loaded, resolve_space(loaded))

    plain = fingerprint()
    assert fingerprint("train.checkpoint_every=3") == plain
    assert fingerprint("train.compile=true") != plain
