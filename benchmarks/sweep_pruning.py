"""Trial-epochs with pruning against without, at equal best validation. Target ≥ 2× fewer.

The same sweep runs with `--pruner none`, `median` and `hyperband`: a random sampler with
the same seed, so every side trains exactly the same configurations (suggestions do not
depend on results), and training is seeded, so a configuration that is not pruned reaches
the same validation score on every side. What pruning changes is only how many epochs the
poor configurations get. Trial-epochs are counted from the run records (`epochs_run`).

    python benchmarks/sweep_pruning.py [--trials 12] [--epochs 10] [--preset tiny] [--size small]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

SPACE = """\
method: random
metric: {name: val/acc, goal: maximize}
parameters:
  train.lr: {distribution: log_uniform_values, min: 1.0e-5, max: 3.0e-1}
  train.optimizer: {values: [adam, sgd]}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--size", default="small", help="synthetic data size (data.synth_size)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import optuna
    import torch

    from avbench.context import RunContext
    from avbench.results.records import iter_records
    from avbench.sweep import run
    from avbench.sweep.core import SweepRequest

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    torch.set_num_threads(1)  # steadier on a shared CPU; epochs are counted, not timed
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        os.environ.setdefault("AVBENCH_DATA", str(scratch / "data"))
        (scratch / "space.yaml").write_text(SPACE)
        overrides = (
            f"train.epochs={args.epochs}",
            "train.patience=0",
            "train.batch_size=32",
            f"data.synth_size={args.size}",
            f"sweep.seed={args.seed}",
        )
        rows = {}
        for pruner in ("none", "median", "hyperband"):
            results = scratch / pruner
            started = time.perf_counter()
            request = SweepRequest(
                "spectrogram-cnn-cremad",
                overrides,
                trials=args.trials,
                sweep_config=scratch / "space.yaml",
                study=pruner,
                pruner=pruner,
            )
            outcome = run(request, RunContext(results, synthetic=True, use_wandb=False, preset=args.preset))
            elapsed = time.perf_counter() - started
            records = [r for r in iter_records(results) if r.sweep == pruner]
            rows[pruner] = {
                "epochs": sum(r.epochs_run for r in records),
                "pruned": sum(r.status == "pruned" for r in records),
                "best": outcome.best_value,
                "best_run": outcome.best_run_id,
                "seconds": elapsed,
                "params": [r.searched for r in sorted(records, key=lambda r: r.trial)],
            }
        assert all(rows[p]["params"] == rows["none"]["params"] for p in rows), "the sides trained different configs"
        print(
            f"spectrogram-cnn-cremad --preset {args.preset}, {args.size} synthetic data: {args.trials} trials x "
            f"up to {args.epochs} epochs, random sampler seed {args.seed} (same configurations on every side), "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        base = rows["none"]
        for pruner, row in rows.items():
            same = "same best" if row["best"] == base["best"] else f"best differs from none's {base['best']:.4f}"
            print(
                f"pruner {pruner:<9}: {row['epochs']:4d} trial-epochs, {row['pruned']:2d} pruned, best val/acc "
                f"{row['best']:.4f} ({row['best_run']}; {same}), {row['seconds']:.0f}s"
            )
        for pruner in ("median", "hyperband"):
            print(f"trial-epochs none/{pruner}: {base['epochs'] / rows[pruner]['epochs']:.2f}x fewer  (target >= 2)")


if __name__ == "__main__":
    main()
