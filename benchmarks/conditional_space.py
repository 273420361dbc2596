"""Conditional learning-rate ranges against one shared range, on the spectrogram-cnn `tiny`
stand-in (CREMA-D layout): sweeps over {adam, lion}, the same trials and sampler seeds each.

Side "conditional" searches adam's lr in [2e-3, 1e-2] and lion's in [2e-4, 1e-3] (lion's
sign updates want a rate about 10x lower); side "flat" searches one range covering both,
[2e-4, 1e-2], for either optimizer. Each side's best val/acc per seed is read from its study.

    python benchmarks/conditional_space.py [--trials 24] [--seeds 3] [--epochs 2]

At 2 epochs the tiny stand-in stays near chance for every configuration, so the comparison
needs more epochs to say anything (--epochs 4 and up).
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
EXPERIMENT = "spectrogram-cnn-cremad"
HEADER = "method: bayes\nmetric: {name: val/acc, goal: maximize}\nparameters:\n  train.batch_size: {values: [16]}\n"
SPACES = {
    "conditional": HEADER
    + "  train.optimizer:\n    values:\n"
    + "      adam: {train.lr: {distribution: log_uniform_values, min: 2.0e-3, max: 1.0e-2}}\n"
    + "      lion: {train.lr: {distribution: log_uniform_values, min: 2.0e-4, max: 1.0e-3}}\n",
    "flat": HEADER
    + "  train.optimizer: {values: [adam, lion]}\n"
    + "  train.lr: {distribution: log_uniform_values, min: 2.0e-4, max: 1.0e-2}\n",
}


def sweep(workspace: Path, side: str, seed: int, trials: int, epochs: int) -> float:
    """One side's sweep at one sampler seed; its best val/acc."""
    import optuna

    study = f"{side}-s{seed}"
    argv = [sys.executable, "-m", "avbench", "sweep", EXPERIMENT, "--preset", "tiny", "--synthetic", "--no-wandb"]
    argv += ["--sweep-config", str(workspace / f"{side}.yaml"), "--study", study, "--trials", str(trials)]
    argv += ["--set", f"sweep.seed={seed}", "--set", f"train.epochs={epochs}"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(argv, cwd=workspace, env=env, check=True, capture_output=True, text=True)
    storage = f"sqlite:///{workspace / 'results' / 'studies' / (EXPERIMENT + '.db')}"
    return optuna.load_study(study_name=study, storage=storage).best_value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        for side, text in SPACES.items():
            (workspace / f"{side}.yaml").write_text(text)
        best: dict[str, list[float]] = {side: [] for side in SPACES}
        started = time.perf_counter()
        for seed in range(args.seeds):
            for side in SPACES:
                best[side].append(sweep(workspace, side, seed, args.trials, args.epochs))
                print(f"seed {seed} {side}: best val/acc {best[side][-1]:.4f}", flush=True)
    print(f"{args.trials} trials x {args.seeds} seeds, {args.epochs} epochs, {time.perf_counter() - started:.0f} s")
    for side, values in best.items():
        print(
            f"{side:12s} best val/acc per seed {', '.join(f'{v:.4f}' for v in values)}; "
            f"mean {statistics.mean(values):.4f}"
        )
    wins = sum(c >= f for c, f in zip(best["conditional"], best["flat"], strict=True))
    print(f"conditional >= flat on {wins} of {args.seeds} seed(s); load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
