"""Conditional against flat learning-rate ranges over hundreds of sampler seeds, by replaying
trials that conditional_space.py really trained.

conditional_space.py trains 24 trials per side and seed (minutes a side), so it affords a
few seeds, and its best of 24 on the stand-in's 12 validation clips moves by a clip or two
from seed to seed. This replays the same sweeps with avbench's own sampler (rebuilt per
trial with the seed a sweep gives it) and define-by-run draws, for many seeds: a suggestion
(optimizer, lr) scores the val/acc of one trained trial drawn at random from the 8 with that
optimizer and the nearest learning rates, out of every trial in WORKDIRs' studies that
completed all its epochs, so the noise of a small validation split is kept. No pruning (a
replayed trial has no curve). It prints each side's mean best with its standard error, and
how often the mean over 3 seeds (disjoint triples) is at least as high for the conditional
side: the chance that conditional_space.py's 3-seed comparison comes out that way.

    python benchmarks/conditional_replay.py WORKDIR [WORKDIR ...] [--seeds 300] [--trials 24]
"""

from __future__ import annotations

import argparse
import bisect
import math
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conditional_space import EXPERIMENT, SPACES  # noqa: E402

NEAREST = 8  # trained trials a replayed suggestion draws its score from


def trained_trials(workdirs: list[Path]) -> dict[str, list[tuple[float, float]]]:
    """optimizer -> sorted (log10 lr, val/acc) of every completed, full-length trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    pooled: dict[str, list[tuple[float, float]]] = {}
    for database in sorted(p for w in workdirs for p in w.glob("*/studies/*.db")):
        storage = f"sqlite:///{database}"
        for summary in optuna.get_all_study_summaries(storage):
            trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
            epochs = max((len(t.intermediate_values) for t in trials), default=0)
            for t in trials:
                if t.state == optuna.trial.TrialState.COMPLETE and len(t.intermediate_values) == epochs:
                    lr = next(v for k, v in t.params.items() if k.endswith("train.lr"))
                    pooled.setdefault(t.params["train.optimizer"], []).append((math.log10(lr), t.value))
    return {name: sorted(points) for name, points in pooled.items()}


def score(points: list[tuple[float, float]], lr: float, rng: np.random.Generator) -> float:
    """The val/acc of one of the NEAREST trained trials to `lr`, at random."""
    x = math.log10(lr)
    at = bisect.bisect_left(points, (x, -1.0))
    window = points[max(0, at - NEAREST) : at + NEAREST]
    near = sorted(window, key=lambda p: abs(p[0] - x))[:NEAREST]
    return near[int(rng.integers(len(near)))][1]


def replay(space, trained, seed: int, trials: int) -> float:
    """One sweep of `trials` replayed suggestions; its best val/acc."""
    import optuna

    from avbench.sweep.backends.optuna import suggest
    from avbench.sweep.conditional import draw
    from avbench.sweep.samplers import make_sampler, trial_seed

    study = optuna.create_study(direction="maximize")
    rng = np.random.default_rng(seed)
    for number in range(trials):
        study.sampler = make_sampler(space, "tpe", trial_seed(seed, number))  # as a sweep's claim does
        trial = study.ask()
        values = space.complete(draw(space.params, lambda param, key, asked=trial: suggest(asked, param, key)))
        study.tell(trial, score(trained[values["train.optimizer"]], values["train.lr"], rng))
    return study.best_value


def spaces() -> dict:
    from avbench.catalog import load_experiment
    from avbench.sweep.space import resolve_space

    loaded = load_experiment(EXPERIMENT, preset="tiny")
    with tempfile.TemporaryDirectory() as tmp:
        resolved = {}
        for side, text in SPACES.items():
            path = Path(tmp) / f"{side}.yaml"
            path.write_text(text)
            resolved[side] = resolve_space(loaded, path)
        return resolved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdirs", type=Path, nargs="+", help="conditional_space.py --workdir folders")
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--trials", type=int, default=24)
    args = parser.parse_args()
    trained = trained_trials(args.workdirs)
    if set(trained) != {"adam", "lion"}:
        sys.exit(f"no trained adam and lion trials in {', '.join(map(str, args.workdirs))}")
    counts = ", ".join(f"{len(points)} {name}" for name, points in sorted(trained.items()))
    print(f"replaying {args.trials} trials x {args.seeds} seeds per side from {counts} trained trials")
    best = {
        side: [replay(space, trained, seed, args.trials) for seed in range(args.seeds)]
        for side, space in spaces().items()
    }
    for side, values in best.items():
        error = statistics.stdev(values) / math.sqrt(len(values))
        print(f"{side:12s} mean best val/acc {statistics.mean(values):.4f} +- {error:.4f} (standard error)")
    triples = [slice(i, i + 3) for i in range(0, args.seeds - 2, 3)]
    wins = sum(statistics.mean(best["conditional"][t]) >= statistics.mean(best["flat"][t]) for t in triples)
    share = f"{wins} of {len(triples)} disjoint triples ({wins / len(triples):.0%})"
    print(f"mean of 3 seeds: conditional >= flat in {share}")


if __name__ == "__main__":
    main()
