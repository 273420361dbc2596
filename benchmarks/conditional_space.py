"""Conditional learning-rate ranges against one shared range, on the spectrogram-cnn `tiny`
stand-in (CREMA-D layout): TPE sweeps over {adam, lion}, the same trials and sampler seeds each.

Side "conditional" searches the built-in sweep file's ranges, adam's lr in [2e-3, 1e-2] and
lion's in [2e-4, 3.3e-3] (lion's sign updates want a rate 3-10x lower, as its paper says);
side "flat" searches their union, [2e-4, 1e-2], for either optimizer. Both sides of a seed
run at the same time (so they see the same load), each sweep on one torch thread. Each
side's best val/acc per seed is read from its study, with the spread of its trials.

    python benchmarks/conditional_space.py [--trials 24] [--seeds 3] [--epochs 8] [--first-seed 0]
        [--size small] [--workdir DIR]

At the preset's 2 epochs every configuration stays at chance, so the comparison says nothing
there; at 8 epochs the trials spread from chance to 0.75, but the validation split is one
actor's 12 clips (steps of 0.083), and two adam trials at nearly the same rate can land 0.4
apart, so one seed's best is mostly luck: compare means over seeds, at equal trial counts.
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
    + "      lion: {train.lr: {distribution: log_uniform_values, min: 2.0e-4, max: 3.3e-3}}\n",
    "flat": HEADER
    + "  train.optimizer: {values: [adam, lion]}\n"
    + "  train.lr: {distribution: log_uniform_values, min: 2.0e-4, max: 1.0e-2}\n",
}


def start_sweep(
    workspace: Path, side: str, seed: int, trials: int, epochs: int, pruner: str, size: str | None
) -> subprocess.Popen:
    """One side's sweep at one sampler seed, in its own results folder."""
    argv = [sys.executable, "-m", "avbench", "sweep", EXPERIMENT, "--preset", "tiny", "--synthetic", "--no-wandb"]
    argv += ["--sweep-config", str(workspace / f"{side}.yaml"), "--study", f"{side}-s{seed}"]
    argv += [
        "--trials",
        str(trials),
        "--sampler",
        "tpe",
        "--pruner",
        pruner,
        "--set",
        f"sweep.seed={seed}",
        "--set",
        f"train.epochs={epochs}",
    ]
    if size is not None:  # a larger stand-in: its validation split resolves smaller differences
        argv += ["--set", f"data.synth_size={size}"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    env |= {"AVBENCH_RESULTS": str(workspace / side), "AVBENCH_DATA": str(workspace / "data")}
    log = open(workspace / f"{side}-s{seed}.log", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(argv, cwd=workspace, env=env, stdout=log, stderr=subprocess.STDOUT)


def summary(workspace: Path, side: str, seed: int) -> tuple[float, str]:
    """The study's best val/acc and a line: its best trial and the spread of its trials."""
    import optuna

    storage = f"sqlite:///{workspace / side / 'studies' / (EXPERIMENT + '.db')}"
    study = optuna.load_study(study_name=f"{side}-s{seed}", storage=storage)
    # A pruned trial carries its last epoch's value too: the spread is over completed ones.
    done = sorted(t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    best = {key.split("/")[-1]: value for key, value in study.best_params.items()}
    line = (
        f"seed {seed} {side:11s} best {study.best_value:.4f} ({best['train.optimizer']}, lr {best['train.lr']:.2g}); "
        f"{len(done)} completed, min/median/max {done[0]:.3f}/{statistics.median(done):.3f}/{done[-1]:.3f}, "
        f"{pruned} pruned"
    )
    return study.best_value, line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="run seeds from this one on (to split a run)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--pruner", default="median", help="the sweep's pruner (none: every trial runs all epochs)")
    parser.add_argument("--size", help="the stand-in's size (data.synth_size; default the tiny preset's, 12 val clips)")
    parser.add_argument("--workdir", type=Path, help="keep the sweeps' logs and studies here (default: a temp folder)")
    args = parser.parse_args()
    best: dict[str, list[float]] = {side: [] for side in SPACES}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = args.workdir or Path(tmp)
        workspace.mkdir(parents=True, exist_ok=True)
        for side, text in SPACES.items():
            (workspace / f"{side}.yaml").write_text(text)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            run = (seed, args.trials, args.epochs, args.pruner, args.size)
            sweeps = {side: start_sweep(workspace, side, *run) for side in SPACES}
            for side, process in sweeps.items():
                if process.wait() != 0:
                    sys.exit(f"{side} sweep (seed {seed}) failed:\n{(workspace / f'{side}-s{seed}.log').read_text()}")
                value, line = summary(workspace, side, seed)
                best[side].append(value)
                print(line, flush=True)
            print(f"  load {os.getloadavg()[0]:.1f}, {time.perf_counter() - started:.0f} s so far", flush=True)
    took = time.perf_counter() - started
    print(f"{args.trials} trials x {args.seeds} seeds, {args.epochs} epochs, pruner {args.pruner}, {took:.0f} s")
    for side, values in best.items():
        per_seed = ", ".join(f"{v:.4f}" for v in values)
        print(f"{side:12s} best val/acc per seed {per_seed}; mean {statistics.mean(values):.4f}")
    wins = sum(c >= f for c, f in zip(best["conditional"], best["flat"], strict=True))
    print(f"conditional >= flat on {wins} of {args.seeds} seed(s); load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
