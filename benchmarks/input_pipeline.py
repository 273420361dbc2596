"""Does the input pipeline keep the device fed? Per model, samples/s of three things:

  pipeline  the loaders alone: feature cache → DataLoader → device → model inputs (uint8
            frames normalised on the device, avbench.data.device_inputs): what the model is fed at
  whole     the whole path: cache → loader → device → forward/backward/step, as fit() trains
  on-device the same training step on one batch already on the device, repeated

ratio = whole / on-device (target ≥ 0.9 on a GPU). On CPU the model is the bottleneck and the
ratio says little; the pipeline column then shows a slow loader anyway (it should be far
above on-device). Each model runs at its experiment's published size (its default config on
the task's synthetic stand-in), or at its tiny preset with --tiny; searched fields at the
middle of their ranges; precision and loader workers as a run resolves them (override with
--set, e.g. --set 'train.mixed_precision="no"', quoted: YAML reads a bare no as false).

    python benchmarks/input_pipeline.py [--models perceiver wav2vec2] [--tiny] [--steps 20] [--set KEY=VALUE]
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path

import torch


def setup(model: str, *, tiny: bool, overrides: tuple[str, ...], results: Path):
    """The model's experiment resolved as a trial would be, and its prepared data (the stand-in
    written and cached on first use)."""
    from avbench.catalog import load_experiment
    from avbench.context import RunContext
    from avbench.model_info import experiment_for
    from avbench.recipes.stages import prepare
    from avbench.sweep.conditional import representative_values
    from avbench.sweep.space import resolve_space

    name = experiment_for(model)
    if name is None:
        raise SystemExit(f"no experiment uses model '{model}'")
    preset = "tiny" if tiny and "tiny" in load_experiment(name).config.presets else None
    loaded = load_experiment(name, preset=preset, overrides=overrides)
    values = representative_values(resolve_space(loaded)) if loaded.searched else {}
    return prepare(loaded.resolve(values), RunContext(results, synthetic=True, use_wandb=False, preset=preset))


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def batches(loader, steps: int):
    """`steps` batches, going round the loader as often as it takes."""
    return itertools.islice(itertools.chain.from_iterable(itertools.repeat(loader)), steps)


def timed(work, steps: int, batch_size: int) -> float:
    synchronize()
    started = time.perf_counter()
    work()
    synchronize()
    return steps * batch_size / (time.perf_counter() - started)


def measure(model_name: str, args, results: Path) -> str:
    from avbench.data.device_inputs import DeviceInputs
    from avbench.models import create_model
    from avbench.recipes.stages import make_accelerator, make_loaders
    from avbench.train.heads import classification_loss
    from avbench.train.optim import build_optimizer, model_param_groups

    prepared = setup(model_name, tiny=args.tiny, overrides=tuple(args.overrides), results=results)
    experiment, cfg = prepared.experiment, prepared.experiment.train
    accelerator = make_accelerator(experiment, use_wandb=False)
    torch.manual_seed(0)
    model = create_model(experiment, prepared.data.spec, checked_args=prepared.model_args)
    optimizer = build_optimizer(model_param_groups(model, cfg.lr), cfg)
    model, optimizer, loader = accelerator.prepare(model, optimizer, make_loaders(prepared.data, cfg)["train"])
    model.train()
    device_inputs = DeviceInputs.of(prepared.data)

    def step(batch) -> None:
        loss = classification_loss(model(batch), batch["label"], dict(cfg.head_weights))
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()

    def whole() -> None:
        for batch in batches(loader, args.steps):
            step(device_inputs(batch))

    def pipeline() -> None:
        for batch in batches(loader, args.steps):
            assert device_inputs(batch)["label"].device.type == accelerator.device.type

    fixed = device_inputs(next(iter(loader)))

    def on_device() -> None:
        for _ in range(args.steps):
            step(fixed)

    for _ in range(args.warmup):  # first-call kernels, allocator, compile
        step(fixed)
    rates = {"pipeline": timed(pipeline, args.steps, cfg.batch_size)}
    rates["whole"] = timed(whole, args.steps, cfg.batch_size)
    rates["on-device"] = timed(on_device, args.steps, cfg.batch_size)
    shapes = ", ".join(f"{m} {tuple(s)}" for m, s in prepared.data.spec.shapes.items())
    setting = (
        f"{experiment.name}{' --preset tiny' if args.tiny else ''}: {shapes}, batch {cfg.batch_size}, "
        f"{accelerator.mixed_precision}, {loader.num_workers if hasattr(loader, 'num_workers') else '?'} loader workers"
    )
    return (
        f"{model_name:18} {rates['pipeline']:12.1f} {rates['whole']:10.1f} {rates['on-device']:10.1f} "
        f"{rates['whole'] / rates['on-device']:7.3f}  {setting}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None, help="[default: every registered classifier]")
    parser.add_argument("--tiny", action="store_true", help="the experiments' tiny preset, not the published size")
    parser.add_argument("--steps", type=int, default=20, help="training steps per measurement")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--results", type=Path, default=None, help="where the feature cache goes [default: a temp dir]")
    args = parser.parse_args()

    from avbench.registry import MODELS

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    print(f"{device}; {args.steps} steps per measurement; load {os.getloadavg()[0]:.2f}")
    print(f"{'model':18} {'pipeline/s':>12} {'whole/s':>10} {'device/s':>10} {'ratio':>7}  setting")
    with tempfile.TemporaryDirectory() as tmp:
        results = args.results or Path(tmp)
        for name in args.models or MODELS.names():
            if MODELS.get(name).objective == "reconstruction":  # no labels: see audeep_vs_bare_loop.py
                continue
            print(measure(name, args, results), flush=True)
    print("samples/s; ratio = whole / on-device (target >= 0.9 on a GPU)")


if __name__ == "__main__":
    main()
