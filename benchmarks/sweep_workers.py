"""Trials per hour with `--workers 2` against `--workers 1` on the same CPU. Target ≥ 1.6× on 2 cores.

Each configuration is the real command (`python -m avbench sweep … --workers N`) timed from
start to exit, in a fresh results directory whose feature cache is linked to one warmed
beforehand, so both sides do the same work: start-up, T trials, the report. Pruning is off
and only the learning rate is searched, so every trial trains the same number of steps.
The default trials (spectrogram-cnn tiny, 10 epochs) take about 5 s each: `--workers` costs
a few seconds of fixed start-up (N more processes importing torch), which sweeps of
one-second trials would mostly measure.

Threads: one worker keeps torch's default (one thread per core); N workers get cores // N
each (what `--workers` does by default). "1 worker, 1 thread" shows what one core does
alone. `--oversubscribed` adds N workers that each keep torch's default: they oversubscribe
the cores, which is why `--workers` divides them (slow: about 8x).

    python benchmarks/sweep_workers.py [--trials 8] [--epochs 10] [--repeats 2] [--preset tiny] [--oversubscribed]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPACE = """\
method: random
metric: {name: val/acc, goal: maximize}
parameters:
  train.lr: {distribution: log_uniform_values, min: 1.0e-3, max: 1.0e-2}
"""


def steady_span(results: Path) -> float:
    """Seconds from the first trial's start to the last trial's end, read from the study:
    throughput without process start-up and the final report."""
    import optuna

    storage = f"sqlite:///{results / 'studies' / 'spectrogram-cnn-cremad.db'}"
    trials = optuna.load_study(study_name="spectrogram-cnn-cremad-tiny-synthetic", storage=storage).trials
    return (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()


def sweep(scratch: Path, name: str, args, extra: list[str]) -> tuple[float, float]:
    results = scratch / name
    results.mkdir()
    (results / "cache").symlink_to(scratch / "cache")
    command = [
        sys.executable,
        "-m",
        "avbench",
        "--results",
        str(results),
        "sweep",
        "spectrogram-cnn-cremad",
        "--preset",
        args.preset,
        "--synthetic",
        "--no-wandb",
        "--trials",
        str(args.trials),
        "--sweep-config",
        str(scratch / "space.yaml"),
        "--pruner",
        "none",
        "--set",
        "train.batch_size=16",
        "--set",
        "train.optimizer=adam",
        "--set",
        "train.patience=0",
        "--set",
        f"train.epochs={args.epochs}",
        *extra,
    ]
    started = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "AVBENCH_DATA": str(scratch / "data")},
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or f"{args.trials} finished" not in done.stdout:
        raise SystemExit(f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed, steady_span(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--oversubscribed", action="store_true", help="also N workers with torch's default threads each"
    )
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    oversubscribed = str(max(1, cores))
    configs = [
        ("1 worker, torch default threads", "one", []),
        ("1 worker, 1 thread", "one-thread", ["--threads", "1"]),
        (
            f"{args.workers} workers, {max(1, cores // args.workers)} thread(s) each",
            "many",
            ["--workers", str(args.workers)],
        ),
    ]
    if args.oversubscribed:
        configs.append(
            (
                f"{args.workers} workers, {oversubscribed} threads each",
                "oversubscribed",
                ["--workers", str(args.workers), "--threads", oversubscribed],
            )
        )
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        (scratch / "space.yaml").write_text(SPACE)
        # Warm-up: writes the stand-in and the feature cache once for every configuration.
        (scratch / "cache").mkdir()
        sweep(scratch, "warm", argparse.Namespace(**{**vars(args), "trials": 1, "epochs": 1}), [])
        walls: dict[str, list[float]] = {key: [] for _, key, _ in configs}
        spans: dict[str, list[float]] = {key: [] for _, key, _ in configs}
        loads = []
        for repeat in range(args.repeats):
            for _, key, extra in configs:
                wall, span = sweep(scratch, f"{key}-{repeat}", args, extra)
                walls[key].append(wall)
                spans[key].append(span)
                loads.append(os.getloadavg()[0])
        print(
            f"spectrogram-cnn-cremad --preset {args.preset}: {args.trials} trials x {args.epochs} epochs, "
            f"{cores} cores, {args.repeats} interleaved repeats, load average {min(loads):.2f}-{max(loads):.2f}"
        )
        rate = {key: 3600 * args.trials / statistics.median(t) for key, t in walls.items()}
        steady = {key: 3600 * args.trials / statistics.median(t) for key, t in spans.items()}
        for label, key, _ in configs:
            runs = ", ".join(f"{t:.1f}" for t in walls[key])
            print(
                f"{label:<40}: {rate[key]:6.0f} trials/hour end to end (median of {runs} s), "
                f"{steady[key]:6.0f} from first trial start to last trial end"
            )
        for name, table in (("end to end", rate), ("trials only", steady)):
            extra = ""
            if "oversubscribed" in table:
                extra = f"; oversubscribed {table['oversubscribed'] / table['one']:.2f}"
            print(
                f"{name:<12} ratio {args.workers} workers / 1: {table['many'] / table['one']:.2f} (target >= 1.6); "
                f"vs 1 worker with 1 thread {table['many'] / table['one-thread']:.2f}{extra}"
            )


if __name__ == "__main__":
    main()
