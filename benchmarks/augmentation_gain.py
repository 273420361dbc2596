"""Does augmentation buy robustness? The same sweep on a domain-shifted stand-in (test speakers
recorded as another corpus would), once without and once with augmentation fields to search,
for several seeds: per seed the val-selected trial's test accuracy on each side, then the mean
and spread of both and of their difference. Both sides of a seed share train.seed and
sweep.seed, trials and epochs; every sweep runs at once (one torch thread each).

    python benchmarks/augmentation_gain.py [--seeds 1 2 3] [--trials 4] [--epochs 12]

Writes the stand-in to data/commands-shifted when absent and every sweep under
--results (default results/augmentation-gain/seed-<s>/{plain,augmented}, sharing one feature
cache); re-running resumes.
Quote `uptime`'s load with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

# General robustness to another recording chain, none of it fitted to the stand-in's shift:
# noise of a random colour at a random SNR, a random channel response.
# Pitch (augment.pitch_semitones, pitch_p) is left out by default only for its cost on a CPU.
SEARCHED = ("augment.noise_p", "augment.noise_colour", "augment.noise_snr_db", "augment.eq_p")


def avbench(*args: str) -> list[str]:
    return [sys.executable, "-m", "avbench", *args]


def sweep_command(args: argparse.Namespace, seed: int, results: Path, searched: tuple[str, ...]) -> list[str]:
    sets = [f"data.root={args.root}", f"train.epochs={args.epochs}", f"train.seed={seed}", f"sweep.seed={seed}"]
    sets += [f"{name}=null" for name in searched]
    options = [item for value in sets for item in ("--set", value)]
    return avbench(
        "--results",
        str(results),
        "sweep",
        args.experiment,
        "--preset",
        args.preset,
        "--no-wandb",
        "--trials",
        str(args.trials),
        "--threads",
        "1",
        *options,
    )


def records(results: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(results.glob("runs/*/*/record.json"))]


def finished_trials(results: Path) -> int:
    """How many of the sweep's first trials have ended (completed, pruned or failed), in order."""
    ended = {r["trial"] for r in records(results)}
    count = 0
    while count in ended:
        count += 1
    return count


def best_test_accuracy(results: Path, budget: int) -> tuple[float, float]:
    """(val/acc, test/acc) of the val-selected completed trial among the sweep's first `budget`
    trials; the earliest wins a tie."""
    finished = [r for r in records(results) if r["trial"] < budget and r["status"] == "completed" and r.get("test")]
    if not finished:
        raise SystemExit(f"{results}: no completed trial among the first {budget}")
    best = max(finished, key=lambda r: (r["val"]["acc"], -r["trial"]))
    return best["val"]["acc"], best["test"]["acc"]


def spread(values: list[float]) -> str:
    mean = statistics.mean(values)
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.3f} ± {deviation:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="mel-stats-mlp-commands")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--root", default="data/commands-shifted")
    parser.add_argument("--results", type=Path, default=Path("results/augmentation-gain"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--searched", nargs="+", default=list(SEARCHED), help="the augment fields the sweep may search")
    parser.add_argument("--report", action="store_true", help="only read the sweeps already run (stopped or not)")
    args = parser.parse_args()
    sides = {"plain": (), "augmented": tuple(args.searched)}
    folders = {(seed, side): args.results / f"seed-{seed}" / side for seed in args.seeds for side in sides}
    if not args.report:
        run_sweeps(args, folders, sides)
    report(args, folders)


def run_sweeps(args: argparse.Namespace, folders: dict[tuple[int, str], Path], sides: dict[str, tuple]) -> None:
    """Every (seed, side) sweep at once, all reading one feature cache (each clip decoded once)."""
    if not Path(args.root).is_dir():
        subprocess.run(avbench("data", "synth", "commands", "--size", "small", "--domain-shift", "--out", args.root))
    shared = args.results / "cache"
    shared.mkdir(parents=True, exist_ok=True)
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "cache").exists():
            (folder / "cache").symlink_to(shared.resolve(), target_is_directory=True)
    running = {
        key: subprocess.Popen(sweep_command(args, key[0], folder, sides[key[1]]), stdout=subprocess.DEVNULL)
        for key, folder in folders.items()
    }
    failed = [f"seed {seed} {side}" for (seed, side), process in running.items() if process.wait()]
    if failed:
        raise SystemExit(f"{', '.join(failed)}: the sweep failed (run it by hand to see why)")


def report(args: argparse.Namespace, folders: dict[tuple[int, str], Path]) -> None:
    """Per seed, both sides judged on the same budget: the first trials both have finished."""
    rows = []
    for seed in args.seeds:
        budget = min(args.trials, *(finished_trials(folders[seed, side]) for side in ("plain", "augmented")))
        plain, augmented = (best_test_accuracy(folders[seed, side], budget) for side in ("plain", "augmented"))
        rows.append((plain, augmented))
        print(
            f"seed {seed} ({budget} trials each): plain val {plain[0]:.3f} test {plain[1]:.3f}  |  "
            f"augmented val {augmented[0]:.3f} test {augmented[1]:.3f}"
        )
    plain_tests = [plain[1] for plain, _ in rows]
    augmented_tests = [augmented[1] for _, augmented in rows]
    gains = [a - p for p, a in zip(plain_tests, augmented_tests, strict=True)]
    print(
        f"{args.experiment} --preset {args.preset}, {args.trials} trials × {args.epochs} epochs, seeds {args.seeds}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(f"  test/acc plain      {spread(plain_tests)}")
    print(f"  test/acc augmented  {spread(augmented_tests)}   (searching {', '.join(args.searched)})")
    print(f"  gain per seed       {spread(gains)}   min {min(gains):+.3f}")


if __name__ == "__main__":
    main()
