"""auDeep's autoencoder trained by fit() against a bare PyTorch loop: same model, same batches.

Both train E epochs on the RMSE reconstruction loss with gradient-norm clipping, evaluate the
validation loss after each epoch and the test loss once; fit() adds what it adds (Accelerate's
wrappers, best-epoch selection, atomic checkpoints every epoch). Both run with one intra-op
thread, as `avbench run` trains audeep on a CPU. Runs are interleaved and the median is
reported, so background load hits both alike. Prints clips/s and the ratio (target >= 0.97).
The defaults are the `cpu` preset of the built-in audeep-esc10 experiment on the small stand-in
(180 training clips, 20 held out; one -60 dB threshold, 32 mel bands x 124 frames; 1 x 32 GRU).

    python benchmarks/audeep_vs_bare_loop.py [--epochs 3] [--repeats 3] [--layers 1 --units 32]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def make_loaders(shape: tuple[int, ...], n_train: int, n_val: int, batch_size: int) -> dict:
    generator = torch.Generator().manual_seed(0)

    class Split(torch.utils.data.Dataset):
        def __init__(self, n):
            self.x = torch.rand(n, *shape, generator=generator) * 2 - 1  # scaled spectrograms lie in [-1, 1]
            self.y = torch.zeros(n, dtype=torch.long)

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return {"audio": self.x[i], "label": self.y[i]}

    def loader(dataset, shuffle):
        return torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(0)
        )

    train, val = Split(n_train), Split(n_val)
    return {"train": loader(train, True), "val": loader(val, False), "test": loader(val, False)}


def bare_loop(model, loaders, epochs: int, lr: float, max_grad_norm: float) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for batch in loaders["train"]:
            loss = model.loss(model(batch), batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            optimizer.zero_grad()
        model.eval()
        with torch.no_grad():
            val = sum(model.loss(model(b), b).item() * len(b["label"]) for b in loaders["val"])
        assert val >= 0
    with torch.no_grad():  # the test split once, as fit() does
        sum(model.loss(model(b), b).item() for b in loaders["test"])
    return time.perf_counter() - started


def with_fit(model, loaders, epochs: int, lr: float, max_grad_norm: float) -> float:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from avbench.audeep.training import fit_autoencoder
    from avbench.config import TrainConfig

    AcceleratorState._reset_state()
    cfg = TrainConfig(
        epochs=epochs, lr=lr, batch_size=loaders["train"].batch_size, patience=0, max_grad_norm=max_grad_norm
    )
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        fit_autoencoder(model, loaders, cfg, Accelerator(), checkpoint_dir=Path(tmp))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train", type=int, default=180)
    parser.add_argument("--val", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--thresholds", type=int, default=1)
    parser.add_argument("--bands", type=int, default=32)
    parser.add_argument("--frames", type=int, default=124)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--units", type=int, default=32)
    args = parser.parse_args()

    from avbench.registry import MODELS
    from avbench.spec import TaskSpec

    torch.set_num_threads(MODELS.get("audeep").cpu_threads or torch.get_num_threads())
    shape = (args.thresholds, args.bands, args.frames)
    spec = TaskSpec(num_classes=10, shapes={"audio": shape})
    loaders = make_loaders(shape, args.train, args.val, args.batch_size)
    factory = MODELS.get("audeep")

    def fresh():
        torch.manual_seed(0)
        return factory(spec, num_layers=args.layers, num_units=args.units)

    bare_loop(fresh(), loaders, 1, 1e-3, 2.0)  # warm-up: first-call kernels and allocations
    bare_times, fit_times = [], []
    for _ in range(args.repeats):
        bare_times.append(bare_loop(fresh(), loaders, args.epochs, 1e-3, 2.0))
        fit_times.append(with_fit(fresh(), loaders, args.epochs, 1e-3, 2.0))
    clips = args.epochs * args.train
    bare, ours = statistics.median(bare_times), statistics.median(fit_times)
    print(
        f"model audeep gru {args.layers}x{args.units}, bidirectional decoder, input {shape}, {args.train} train / "
        f"{args.val} val, batch {args.batch_size}, {args.epochs} epochs x {args.repeats}, "
        f"{torch.get_num_threads()} thread(s)"
    )
    for label, times in (("bare loop", bare_times), ("fit()    ", fit_times)):
        median = statistics.median(times)
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(f"{label}: {clips / median:8.1f} clips/s  (median {median:.2f}s of {runs})")
    print(f"throughput ratio fit/bare: {bare / ours:.3f}  (target >= 0.97)")


if __name__ == "__main__":
    main()
