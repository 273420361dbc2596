"""How many trials a second a shared study serves: W worker processes running instant
trials against SQLite, a journal file and PostgreSQL. Target ≥ 20 trials/s at 32 workers on
PostgreSQL, so a sweep of minute-long trials on hundreds of GPUs is never bound by its storage.

Each worker runs the sweep's own protocol, only without training: the Optuna backend's
`next_trial` (under the claim lock the census of the study, the dead-trial check and the new
trial marked with its worker; then its first heartbeat), the values suggested, the run id
kept, one epoch reported, the trial told complete through `OptunaTrial.finish`, all held in
the trial's heartbeat as in a real sweep.
Workers are forked once the study exists and start together; the clock runs from that start
to the last trial's end. Claim latency is each `next_trial` call's time (mostly waiting for
the claim lock at high W); "lock held" is the mean time a claim holds the lock, the serial
part: 1 / that is the most claims a second any number of workers can make. "overhead/60s"
is one worker's claim + finish time per trial, as a fraction of a 60-second trial.

PostgreSQL comes from tests/postgres.py (a throwaway server; skipped without the binaries).

    python benchmarks/sweep_scale.py [--workers 1,4,16,32] [--storages sqlite,journal,postgresql]
                                     [--trials-per-worker 5] [--min-trials 40]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import traceback
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EXPERIMENT = "spectrogram-cnn-cremad"  # any built-in experiment: only its search space is used


def open_handle(url: str, trials: int, results: Path):
    from avbench.catalog import load_experiment
    from avbench.context import RunContext
    from avbench.sweep.backends.optuna import open_study
    from avbench.sweep.space import resolve_space

    loaded = load_experiment(EXPERIMENT, preset="tiny")
    space = resolve_space(loaded, None)
    ctx = RunContext(results, synthetic=True, use_wandb=False, preset="tiny")
    return (
        loaded,
        space,
        open_study(loaded, space, ctx, trials=trials, storage_url=url, study="scale", sampler="random"),
    )


class TimedLock:
    """The study's claim lock, timing how long each claim holds it: the serial part of a claim,
    whose mean bounds the claims a second of any number of workers."""

    def __init__(self, lock):
        self.lock, self.held = lock, []

    @property
    def lost(self) -> bool:
        return self.lock.lost

    def __enter__(self):
        self.lock.__enter__()
        self.taken = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.held.append(time.perf_counter() - self.taken)
        return self.lock.__exit__(*exc)


def worker(url: str, trials: int, results: Path, start, queue) -> None:
    """One worker: instant trials until the study has its trials; its timings to the queue."""
    try:
        queue.put(run_worker(url, trials, results, start))
    except BaseException:
        queue.put(traceback.format_exc())
        raise


def run_worker(url: str, trials: int, results: Path, start) -> tuple:
    from avbench.results.records import RunRecord
    from avbench.sweep.backends.optuna import OptunaBackend

    loaded, space, handle = open_handle(url, trials, results)
    handle.lock = lock = TimedLock(handle.lock)
    backend = OptunaBackend(handle, space)
    claims, finishes = [], []
    start.wait()
    while True:
        began = time.perf_counter()
        trial = backend.next_trial()
        claimed = time.perf_counter()
        if trial is None:
            break
        claims.append(claimed - began)
        with trial.keep_alive():
            run_id = f"t{trial.number:05d}"
            trial.started(run_id)
            trial.report(1, 0.5)
            record = RunRecord(run_id, loaded.name, "cremad", "spectrogram-cnn", status="completed")
            trial.finish(record, (0.5,))
        finishes.append(time.perf_counter() - claimed)
    return claims, finishes, lock.held, time.perf_counter()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(url: str, workers: int, trials: int, results: Path) -> dict:
    open_handle(url, trials, results)  # create the study before the workers join it
    context = multiprocessing.get_context("fork")
    start, queue = context.Event(), context.Queue()
    procs = [context.Process(target=worker, args=(url, trials, results, start, queue)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    time.sleep(1.0 + 0.1 * workers)  # every worker has opened the study
    began = time.perf_counter()
    start.set()
    outcomes = [queue.get(timeout=900) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    for outcome in outcomes:
        if isinstance(outcome, str):
            sys.exit(f"a worker failed:\n{outcome}")
    claims = [c for outcome in outcomes for c in outcome[0]]
    finishes = [f for outcome in outcomes for f in outcome[1]]
    held = [h for outcome in outcomes for h in outcome[2]]
    wall = max(outcome[3] for outcome in outcomes) - began
    return {
        "trials": len(claims),
        "per_s": len(claims) / wall,
        "p50": percentile(claims, 0.5),
        "p99": percentile(claims, 0.99),
        "held": statistics.mean(held),
        "overhead": statistics.mean(c + f for c, f in zip(claims, finishes, strict=True)) / 60.0,
    }


def storage_url(kind: str, folder: Path, stack: ExitStack) -> str | None:
    if kind == "sqlite":
        return str(folder / "scale.db")
    if kind == "journal":
        return str(folder / "scale.log")
    from tests.postgres import PostgresUnavailable, postgres_server

    try:
        return stack.enter_context(postgres_server(max_connections=200))
    except PostgresUnavailable as exc:
        print(f"postgresql: skipped ({exc})")
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,4,16,32")
    parser.add_argument("--storages", default="sqlite,journal,postgresql")
    parser.add_argument("--trials-per-worker", type=int, default=5)
    parser.add_argument("--min-trials", type=int, default=40)
    args = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}, {os.cpu_count()} cores")
    header = f"{'storage':<11} {'W':>3} {'trials':>6} {'trials/s':>9} {'claim p50':>10} {'claim p99':>10}"
    print(header + f" {'lock held':>10} {'overhead/60s':>13}")
    for kind in args.storages.split(","):
        with ExitStack() as stack:
            url = storage_url(kind, Path(stack.enter_context(tempfile.TemporaryDirectory())), stack)
            if url is None:
                continue
            for workers in map(int, args.workers.split(",")):
                trials = max(args.min_trials, args.trials_per_worker * workers)
                results = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                study_url = url if kind == "postgresql" else str(results / Path(url).name)
                row = measure(study_url, workers, trials, results)
                print(
                    f"{kind:<11} {workers:>3} {row['trials']:>6} {row['per_s']:>9.1f} {row['p50'] * 1000:>8.1f}ms "
                    f"{row['p99'] * 1000:>8.1f}ms {row['held'] * 1000:>8.1f}ms {row['overhead']:>12.4%}",
                    flush=True,
                )
                if kind == "postgresql":
                    drop_study(url)
    print(f"load: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}")


def drop_study(url: str) -> None:
    """Each W gets a fresh study of the same name in the one server."""
    import optuna

    from avbench.sweep.storage import open_storage, resolve_storage_url

    optuna.delete_study(study_name="scale", storage=open_storage(resolve_storage_url(url, Path("."), EXPERIMENT)))


if __name__ == "__main__":
    main()
