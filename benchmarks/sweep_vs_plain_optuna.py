"""`avbench sweep` against a plain Optuna script doing the same trials: overhead of the sweep
layer (claim lock, heartbeats, dead-worker checks, run-id bookkeeping). Target ≤ 1.05×.

Both sides call the same `run_recipe` for the same number of trials, in this process,
on a warm feature cache, with an SQLite storage and no pruning. Only the learning rate is
searched (batch size and optimizer fixed), so every trial does the same amount of work
whatever value the samplers draw. Runs are interleaved, alternating which side goes first,
and both the median and the fastest run are reported, so background load hits both alike.
torch runs one thread on both sides: on a shared CPU, torch's spinning thread pool turns
other processes' load into noise far larger than the overhead being measured.

    python benchmarks/sweep_vs_plain_optuna.py [--trials 3] [--repeats 5] [--epochs 2] [--preset tiny]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

SPACE = """\
method: bayes
metric: {name: val/acc, goal: maximize}
parameters:
  train.lr: {distribution: log_uniform_values, min: 1.0e-3, max: 1.0e-2}
"""


EXPERIMENT = "spectrogram-cnn-cremad"


def overrides(epochs: int) -> tuple[str, ...]:
    return ("train.batch_size=16", "train.optimizer=adam", f"train.epochs={epochs}", "train.patience=0")


def load(preset: str, epochs: int):
    from avbench.catalog import load_experiment

    return load_experiment(EXPERIMENT, preset=preset, overrides=overrides(epochs))


def plain_optuna(loaded, space, results: Path, trials: int) -> float:
    """What a user would write by hand: create_study + optimize around run_recipe."""
    import optuna

    from avbench.context import RunContext, TrialInfo
    from avbench.recipes import run_recipe

    study = optuna.create_study(
        study_name="plain",
        storage=f"sqlite:///{results / 'plain.db'}",
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0),
    )

    def objective(trial: optuna.Trial) -> float:
        values = {"train.lr": trial.suggest_float("train.lr", 1e-3, 1e-2, log=True)}

        def on_eval(epoch: int, metrics: dict) -> bool:
            trial.report(metrics["val/acc"], epoch)
            return False

        record = run_recipe(
            loaded.resolve(values),
            RunContext(results, synthetic=True, use_wandb=False),
            trial=TrialInfo(sweep="plain", number=trial.number, searched=values, run_id=f"plain-{trial.number}"),
            on_eval=on_eval,
        )
        return record.val["acc"]

    started = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return time.perf_counter() - started


def avbench_sweep(request, preset: str, results: Path, trials: int) -> float:
    """What `avbench sweep` runs: the library entry, from the experiment file to the outcome."""
    from dataclasses import replace

    from avbench.context import RunContext
    from avbench.sweep import run

    started = time.perf_counter()
    ctx = RunContext(results, synthetic=True, use_wandb=False, preset=preset)
    outcome = run(replace(request, trials=trials), ctx)
    elapsed = time.perf_counter() - started
    assert outcome.finished == trials, outcome
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--preset", default="tiny")
    args = parser.parse_args()

    import optuna
    import torch

    from avbench.context import RunContext
    from avbench.recipes import run_recipe
    from avbench.sweep.core import SweepRequest
    from avbench.sweep.space import resolve_space

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        os.environ.setdefault("AVBENCH_DATA", str(scratch / "data"))
        (scratch / "space.yaml").write_text(SPACE)
        loaded = load(args.preset, args.epochs)
        space = resolve_space(loaded, scratch / "space.yaml")
        cache = scratch / "cache"
        # Warm-up: writes the stand-in, fills the feature cache, pays first-call costs.
        run_recipe(loaded.resolve({"train.lr": 3e-3}), RunContext(scratch / "warm", synthetic=True, use_wandb=False))
        (scratch / "warm" / "cache").rename(cache)
        plain_times, ours_times = [], []
        request = SweepRequest(
            EXPERIMENT, overrides(args.epochs), sweep_config=scratch / "space.yaml", study="avbench", pruner="none"
        )
        sides = [
            ("plain", lambda results: plain_optuna(loaded, space, results, args.trials), plain_times),
            ("ours", lambda results: avbench_sweep(request, args.preset, results, args.trials), ours_times),
        ]
        for repeat in range(args.repeats):
            for name, runner, times in sides if repeat % 2 == 0 else sides[::-1]:
                results = scratch / f"{name}-{repeat}"
                results.mkdir()
                (results / "cache").symlink_to(cache)
                times.append(runner(results))
        print(
            f"spectrogram-cnn-cremad --preset {args.preset}: {args.trials} trials x {args.epochs} epochs "
            f"(lr searched, batch 16, adam, no pruning), {args.repeats} interleaved repeats, "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        for label, times in (("plain optuna  ", plain_times), ("avbench sweep ", ours_times)):
            print(
                f"{label}: median {statistics.median(times):.2f}s, fastest {min(times):.2f}s  "
                f"({', '.join(f'{t:.2f}' for t in times)})"
            )
        median = statistics.median(ours_times) / statistics.median(plain_times)
        print(
            f"wall-time ratio avbench/plain: median {median:.3f}, fastest {min(ours_times) / min(plain_times):.3f}"
            "  (target <= 1.05)"
        )


if __name__ == "__main__":
    main()
