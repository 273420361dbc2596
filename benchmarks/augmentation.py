"""What robustness costs: epoch time of a CPU preset with each augmentation family on, as a
ratio to the same epoch without augmentation.

Each epoch is B-sized batches of the experiment's cached input (random values of the cached
shape: waveforms when a waveform family is on, since the log-mel is then computed in the batch),
passed through the augmentation pipeline and one forward/backward/step of the experiment's
model. Families are interleaved and the median of `--repeats` is reported, so background load
hits all alike; quote `uptime` next to the figures.

    python benchmarks/augmentation.py [--experiment spectrogram-cnn-commands] [--preset cpu] [--batches 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

FAMILIES = {
    "none": {},
    "waveform (gain, noise, shift, reverb)": {"gain_db": 6, "noise_p": 0.5, "time_shift": 0.1, "reverb_p": 0.3},
    "waveform (coloured noise, channel)": {"noise_p": 0.5, "noise_colour": "random", "eq_p": 0.5},
    "waveform (speed, pitch ±12)": {"speed": 0.1, "pitch_semitones": 12},
    "spectrogram (SpecAugment)": {"freq_masks": 2, "time_masks": 2, "time_warp": 5},
    "batch (mixup, cutmix, smoothing)": {"mixup_alpha": 0.2, "cutmix_alpha": 0.5, "label_smoothing": 0.1},
    "normalisation (per clip)": {"normalise": "clip"},
}


def experiment_with(name: str, preset: str, augment: dict):
    from avbench.catalog import load_experiment
    from avbench.preflight import with_model_inputs

    loaded = load_experiment(name, preset=preset, overrides=[f"augment.{k}={v}" for k, v in augment.items()])
    values = {"train.lr": 1e-3, "train.batch_size": 16, "train.optimizer": "adam", "train.weight_decay": 0.0}
    values["model_args.dropout"] = 0.1
    return with_model_inputs(loaded.resolve({k: v for k, v in values.items() if k in loaded.searched}))


def epoch_seconds(experiment, batches: int) -> float:
    from avbench.augment import build_pipeline, cached_data, model_spec
    from avbench.data.dataset import example_shapes
    from avbench.models import create_model
    from avbench.spec import TaskSpec

    shapes = example_shapes(cached_data(experiment))
    spec = model_spec(experiment, TaskSpec(8, ("audio",), experiment.data.sample_rate, dict(shapes)))
    model = create_model(experiment, spec)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    pipeline = build_pipeline(experiment)
    size = experiment.train.batch_size
    batch = {"audio": torch.randn(size, *shapes["audio"]) * 0.1, "label": torch.arange(size) % 8}
    started = time.perf_counter()
    for _ in range(batches):
        step = pipeline.train(batch) if pipeline is not None else batch
        loss = torch.nn.functional.cross_entropy(model(step), step["label"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="spectrogram-cnn-commands")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in FAMILIES}
    for augment in FAMILIES.values():  # warm-up: first-call costs (imports, allocator, kernels) are not the family's
        epoch_seconds(experiment_with(args.experiment, args.preset, augment), 1)
    for _ in range(args.repeats):
        for name, augment in FAMILIES.items():
            times[name].append(epoch_seconds(experiment_with(args.experiment, args.preset, augment), args.batches))
    base = statistics.median(times["none"])
    print(f"{args.experiment} --preset {args.preset}, {args.batches} batches, load {os.getloadavg()[0]:.2f}")
    for name, measured in times.items():
        median = statistics.median(measured)
        print(f"  {name:40s} {median:7.2f} s  x{median / base:.2f}")


if __name__ == "__main__":
    main()
