"""Video frames stay uint8 from the cache to the device and are normalised there
(avbench.data.device_inputs): the loaders move a quarter of the bytes, and the model sees
exactly the float32 values the CPU normalisation gave before."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from accelerate.utils import set_seed

from avbench.augment import build_pipeline
from avbench.catalog import load_experiment
from avbench.config import DataConfig
from avbench.context import RunContext
from avbench.data.cache import FeatureCache
from avbench.data.dataset import ArrayDataset, SplitArrays, prepare_data
from avbench.data.device_inputs import DeviceInputs
from avbench.models import create_model
from avbench.recipes.stages import make_accelerator, prepare
from avbench.tasks.cremad import CremaD
from avbench.train.loop import FitResult, fit

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


def first(split: SplitArrays, count: int) -> SplitArrays:
    """The split's first `count` examples: a run of seconds."""
    rows = {m: r.take(range(count)) for m, r in split.features.items()}
    return replace(split, features=rows, labels=split.labels[:count], speakers=split.speakers[:count])


def normalised_on_the_cpu(dataset: ArrayDataset, index: int) -> dict:
    """An example as ArrayDataset gave it before its frames stayed uint8."""
    example = ArrayDataset.__getitem__(dataset, index)
    return {**example, "video": torch.from_numpy(cpu_normalised(example["video"].numpy(), *dataset.split.video_norm))}


class CpuNormalised(ArrayDataset):
    __getitem__ = normalised_on_the_cpu


def tiny_perceiver_run(prepared, dataset_class: type[ArrayDataset]) -> FitResult:
    """One fixed-seed epoch of the tiny perceiver on a few examples, as train_classifier runs it."""
    experiment = prepared.experiment
    cfg = experiment.train
    data = replace(prepared.data, splits={name: first(split, 8) for name, split in prepared.data.splits.items()})
    loaders = {
        name: torch.utils.data.DataLoader(
            dataset_class(split),
            batch_size=cfg.batch_size,
            shuffle=name == "train",
            generator=torch.Generator().manual_seed(cfg.seed),
        )
        for name, split in data.splits.items()
    }
    set_seed(cfg.seed)
    model = create_model(experiment, data.spec, checked_args=prepared.model_args)
    return fit(
        model,
        loaders,
        cfg,
        make_accelerator(experiment, use_wandb=False),
        num_classes=data.spec.num_classes,
        inputs=build_pipeline(experiment),
        device_inputs=DeviceInputs.of(data),
    )


def test_a_perceiver_run_gives_the_numbers_of_frames_normalised_on_the_cpu(workspace):
    """A fixed-seed tiny run trains, validates and tests on exactly the values of the old CPU
    path, video augmentation included (it runs after the normalisation, on float32 frames)."""
    augment = ("augment.video_flip=0.5", "augment.video_color=0.3")
    overrides = ("train.lr=0.003", "train.batch_size=4", "train.epochs=1", *augment)
    loaded = load_experiment("perceiver-cremad", preset="tiny", overrides=overrides)
    prepared = prepare(loaded.resolve({}), RunContext(workspace / "results", synthetic=True, use_wandb=False))
    on_device, on_cpu = (tiny_perceiver_run(prepared, dataset) for dataset in (ArrayDataset, CpuNormalised))
    assert on_device.val == on_cpu.val and on_device.test == on_cpu.test
    durations = ("epoch_time_s",)
    assert [{k: v for k, v in e.items() if k not in durations} for e in on_device.history] == [
        {k: v for k, v in e.items() if k not in durations} for e in on_cpu.history
    ]
