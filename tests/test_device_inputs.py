"""Video frames stay uint8 from the cache to the device and are normalised there
(avbench.data.device_inputs): the loaders move a quarter of the bytes, and the model sees
exactly the float32 values the CPU normalisation gave before."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avbench.config import DataConfig
from avbench.data.cache import FeatureCache
from avbench.data.dataset import ArrayDataset, prepare_data
from avbench.data.device_inputs import DeviceInputs
from avbench.tasks.cremad import CremaD
from tests.conftest import TINY, TINY_VALUES

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]  # ImageNet's: values that round in float32


def cpu_normalised(frames: np.ndarray, mean, std) -> np.ndarray:
    """How ArrayDataset normalised frames on the CPU before they stayed uint8 (the reference)."""
    scale = np.asarray(std, np.float32).reshape(3, 1, 1) * 255.0
    shift = np.asarray(mean, np.float32).reshape(3, 1, 1) * 255.0
    return (np.asarray(frames, np.float32) - shift) / scale


def devices() -> list[torch.device]:
    return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


def test_cached_frames_stay_uint8_and_normalise_on_the_device_to_the_old_values(standin, tmp_path):
    data = DataConfig(
        modalities=["audio", "video"],
        sample_rate=8000,
        clip_seconds=0.25,
        num_frames=2,
        image_size=16,
        video_mean=MEAN,
        video_std=STD,
    )
    prepared = prepare_data(CremaD(), standin("cremad"), data, FeatureCache(tmp_path / "cache"))
    split = prepared.splits["train"]
    batch = next(iter(torch.utils.data.DataLoader(ArrayDataset(split), batch_size=8)))
    assert batch["video"].dtype == torch.uint8 and batch["audio"].dtype == torch.float32
    expected = np.stack([cpu_normalised(split.features["video"][i], MEAN, STD) for i in range(8)])
    assert batch["video"].nbytes * 4 == expected.nbytes  # a quarter of the bytes to copy
    to_inputs = DeviceInputs.of(prepared)
    for device in devices():
        on_device = {k: v.to(device) for k, v in batch.items()}
        inputs = to_inputs(on_device)
        assert inputs["video"].device.type == device.type and inputs["video"].dtype == torch.float32
        assert torch.equal(inputs["video"].cpu(), torch.from_numpy(expected))
        assert inputs["audio"] is on_device["audio"] and inputs["label"] is on_device["label"]
    floats = {"video": torch.from_numpy(expected)}
    assert to_inputs(floats) is floats  # frames already normalised are model inputs as they are


def run_record(cli, workspace, *args: str) -> dict:
    before = set((workspace / "results" / "runs").glob("*/*"))
    cli("run", "perceiver-cremad", *TINY, *TINY_VALUES, "--no-wandb", *args)
    (new,) = set((workspace / "results" / "runs").glob("*/*")) - before
    # Every epoch's metrics but its duration.
    history = [json.loads(line) for line in (new / "metrics.jsonl").read_text().splitlines()]
    return json.loads((new / "record.json").read_text()) | {
        "history": [{k: v for k, v in epoch.items() if k != "epoch_time_s"} for epoch in history]
    }


@pytest.mark.parametrize("augment", [(), ("--set", "augment.video_flip=0.5", "--set", "augment.video_color=0.3")])
def test_a_perceiver_run_gives_the_numbers_of_frames_normalised_on_the_cpu(cli, workspace, monkeypatch, augment):
    """A fixed-seed tiny run trains, validates and tests on exactly the values of the old CPU
    path, with and without the video augmentation that runs after the normalisation."""
    args = ("--set", "train.epochs=1", *augment)
    on_device = run_record(cli, workspace, *args)
    to_device = ArrayDataset.__getitem__

    def normalised_on_the_cpu(self, index: int) -> dict:
        example = to_device(self, index)
        return {**example, "video": torch.from_numpy(cpu_normalised(example["video"].numpy(), *self.split.video_norm))}

    monkeypatch.setattr(ArrayDataset, "__getitem__", normalised_on_the_cpu)
    on_cpu = run_record(cli, workspace, *args)
    assert on_device["status"] == on_cpu["status"] == "completed"
    assert on_device["val"] == on_cpu["val"] and on_device["test"] == on_cpu["test"]
    assert on_device["history"] == on_cpu["history"]
