"""fit() against a bare PyTorch loop: same model, same batches, same work per epoch.

Both train E epochs and evaluate the validation split after each; fit() adds what it adds
(Accelerate's wrappers, metrics, atomic checkpoints). Runs are interleaved and the median
is reported, so background load hits both alike. Prints samples/s and the ratio (target ≥ 0.97).

    python benchmarks/fit_vs_bare_loop.py [--epochs 2] [--repeats 3] [--width 0.5 --depth 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def make_loaders(spec, n_train: int, n_val: int, batch_size: int):
    generator = torch.Generator().manual_seed(0)

    class Split(torch.utils.data.Dataset):
        def __init__(self, n):
            self.x = torch.randn(n, *spec.shapes["audio"], generator=generator)
            self.y = torch.randint(0, spec.num_classes, (n,), generator=generator)

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return {"audio": self.x[i], "label": self.y[i]}

    train, val = Split(n_train), Split(n_val)

    def loader(ds, shuffle):
        return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle,
                                           generator=torch.Generator().manual_seed(0))

    return {"train": loader(train, True), "val": loader(val, False), "test": loader(val, False)}


def bare_loop(model, loaders, epochs: int, lr: float) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train", type=int, default=256)
    parser.add_argument("--val", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--depth", type=float, default=0.5)
    parser.add_argument("--frames", type=int, default=151)
    args = parser.parse_args()

    from avbench.registry import MODELS
    from avbench.spec import TaskSpec

    spec = TaskSpec(num_classes=6, shapes={"audio": (1, 64, args.frames)})
    loaders = make_loaders(spec, args.train, args.val, args.batch_size)
    factory = MODELS.get("spectrogram-cnn")

    def fresh():
        torch.manual_seed(0)
        return factory(spec, width=args.width, depth=args.depth)

    bare_loop(fresh(), loaders, 1, 1e-3)  # warm-up: first-call kernels and allocations
    bare_times, fit_times = [], []
    for _ in range(args.repeats):
        bare_times.append(bare_loop(fresh(), loaders, args.epochs, 1e-3))
        fit_times.append(with_fit(fresh(), loaders, args.epochs, 1e-3, spec.num_classes))
    samples = args.epochs * args.train
    bare, ours = statistics.median(bare_times), statistics.median(fit_times)
    print(f"model spectrogram-cnn width={args.width} depth={args.depth} input {spec.shapes['audio']}, "
          f"{args.train} train / {args.val} val, batch {args.batch_size}, {args.epochs} epochs x {args.repeats}")
    for label, times in (("bare loop", bare_times), ("fit()    ", fit_times)):
        median = statistics.median(times)
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(f"{label}: {samples / median:8.1f} samples/s  (median {median:.2f}s of {runs})")
    print(f"throughput ratio fit/bare: {bare / ours:.3f}  (target >= 0.97)")


if __name__ == "__main__":
    main()
