"""fit() against a bare PyTorch loop, per model: same model, same batches, same work per epoch.

Each model is measured at its experiment's CPU preset (`<model>-cremad` when it exists;
searched fields at the middle of their sweep ranges) on random inputs of the data path's
shapes. Both train E epochs and evaluate the validation split after each; fit() adds what it
adds (Accelerate's wrappers, metrics, atomic checkpoints). Runs are interleaved and the
median is reported, so background load hits both alike. Prints samples/s and the ratio
(target ≥ 0.97).

    python benchmarks/fit_vs_bare_loop.py [--models spectrogram-cnn perceiver] [--preset cpu] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from avbench.train.optim import model_param_groups


def make_loaders(spec, n_train: int, n_val: int, batch_size: int):
    generator = torch.Generator().manual_seed(0)

    class Split(torch.utils.data.Dataset):
        """Random examples of every modality the model reads, at the data path's shapes."""

        def __init__(self, n):
            self.x = {m: torch.randn(n, *shape, generator=generator) for m, shape in spec.shapes.items()}
            self.y = torch.randint(0, spec.num_classes, (n,), generator=generator)

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return {**{m: x[i] for m, x in self.x.items()}, "label": self.y[i]}

    train, val = Split(n_train), Split(n_val)

    def loader(ds, shuffle):
        return torch.utils.data.DataLoader(
            ds, batch_size=batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(0)
        )

    return {"train": loader(train, True), "val": loader(val, False), "test": loader(val, False)}


def bare_loop(model, loaders, epochs: int, lr: float) -> float:
    # The model's own parameter groups when it has them (as fit() takes them itself).
    params = model_param_groups(model, lr)
    optimizer = torch.optim.Adam([p for p in params if not isinstance(p, torch.Tensor) or p.requires_grad], lr=lr)
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for batch in loaders["train"]:
            loss = F.cross_entropy(model(batch), batch["label"])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        model.eval()
        with torch.no_grad():
            correct = sum((model(b).argmax(-1) == b["label"]).sum().item() for b in loaders["val"])
        assert correct >= 0
    # The test split once, as fit() does.
    with torch.no_grad():
        sum((model(b).argmax(-1) == b["label"]).sum().item() for b in loaders["test"])
    return time.perf_counter() - started


def with_fit(model, loaders, epochs: int, lr: float, num_classes: int) -> float:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from avbench.config import TrainConfig
    from avbench.train.loop import fit

    AcceleratorState._reset_state()
    cfg = TrainConfig(epochs=epochs, lr=lr, batch_size=loaders["train"].batch_size, patience=0)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        fit(model, loaders, cfg, Accelerator(), num_classes=num_classes, checkpoint_dir=Path(tmp))
        return time.perf_counter() - started


def experiment_setup(model: str, preset: str):
    """The model's experiment at `preset` (when it has one), searched fields at the middle of
    their sweep ranges: the spec, model arguments and train config a trial would use."""
    from avbench.catalog import load_experiment
    from avbench.model_info import experiment_for
    from avbench.preflight import check_model_args, spec_without_data, with_model_inputs
    from avbench.sweep.conditional import representative_values
    from avbench.sweep.space import resolve_space

    name = experiment_for(model)
    if name is None:
        raise SystemExit(f"no experiment uses model '{model}'")
    loaded = load_experiment(name)
    loaded = load_experiment(name, preset=preset if preset in loaded.config.presets else None)
    values = representative_values(resolve_space(loaded)) if loaded.searched else {}
    experiment = with_model_inputs(loaded.resolve(values))
    return loaded.name, spec_without_data(experiment), check_model_args(experiment), experiment.train


def measure(model_name: str, args) -> tuple[float, float, str]:
    from avbench.registry import MODELS

    experiment, spec, model_args, train = experiment_setup(model_name, args.preset)
    batch_size = args.batch_size or train.batch_size
    loaders = make_loaders(spec, args.train, args.val, batch_size)
    factory = MODELS.get(model_name)

    def fresh():
        torch.manual_seed(0)
        return factory(spec, **model_args)

    bare_loop(fresh(), loaders, 1, train.lr)  # warm-up: first-call kernels and allocations
    bare_times, fit_times = [], []
    for _ in range(args.repeats):  # interleaved, so background load hits both alike
        bare_times.append(bare_loop(fresh(), loaders, args.epochs, train.lr))
        fit_times.append(with_fit(fresh(), loaders, args.epochs, train.lr, spec.num_classes))
    samples = args.epochs * args.train
    shapes = ", ".join(f"{m} {tuple(s)}" for m, s in spec.shapes.items())
    return (
        samples / statistics.median(bare_times),
        samples / statistics.median(fit_times),
        f"{experiment} --preset {args.preset}: {shapes}, batch {batch_size}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None, help="[default: every registered model]")
    parser.add_argument("--preset", default="cpu", help="the experiments' preset to measure at")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train", type=int, default=128)
    parser.add_argument("--val", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=None, help="[default: the experiment's]")
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's]")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from avbench.registry import MODELS

    print(
        f"{args.train} train / {args.val} val random examples, {args.epochs} epoch(s) x {args.repeats} repeats, "
        f"median; {torch.get_num_threads()} torch threads"
    )
    print(f"{'model':18} {'bare samples/s':>15} {'fit() samples/s':>16} {'ratio':>7}  setting")
    for name in args.models or MODELS.names():
        if MODELS.get(name).objective == "reconstruction":  # no labels to classify
            print(f"{name:18} see benchmarks/audeep_vs_bare_loop.py (trains on a reconstruction loss)")
            continue
        bare, ours, setting = measure(name, args)
        print(f"{name:18} {bare:15.1f} {ours:16.1f} {ours / bare:7.3f}  {setting}", flush=True)
    print("ratio = fit() / bare loop throughput (target >= 0.97)")


if __name__ == "__main__":
    main()
