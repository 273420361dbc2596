"""Chaos: one `--workers 2` sweep of N short trials while a random worker is SIGKILLed K times
at random moments; the sweep itself is never restarted by hand.

At the end it checks, and prints:
- exactly N finished trials in the study, none counted twice (N distinct run ids, each with
  one finished record whose metrics hold every epoch once);
- every killed trial resumed from its last epoch checkpoint (each kill hits a worker whose
  trial has checkpointed an epoch since that trial was last hit) (its finished record's
  `resumed_from_epoch` is at least the epochs it had checkpointed when it was killed);
- the trial-epochs spent (every epoch any attempt finished, read from the study's reported
  values, plus one partial epoch per kill) no more than N x epochs + K x one epoch + restarts.

With --postgres the study lives on a throwaway PostgreSQL server (tests/postgres.py) that is
also stopped (`pg_ctl stop -m fast`) and started again, on the same port and data, twice at
random moments, 2-6 s down each time: the workers must wait and reconnect.

    python benchmarks/chaos.py [--trials 12] [--epochs 4] [--kills 10] [--seed 0] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DB_RESTARTS = 2
EXPERIMENT = "spectrogram-cnn-cremad"
STUDY = f"{EXPERIMENT}-tiny-synthetic"
SPACE = """\
method: random
metric: {name: val/acc, goal: maximize}
parameters:
  train.lr: {distribution: log_uniform_values, min: 1.0e-3, max: 1.0e-2}
"""


def command(results: Path, scratch: Path, trials: int, epochs: int, workers: int, storage: str | None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "avbench",
        "--results",
        str(results),
        "sweep",
        EXPERIMENT,
        "--preset",
        "tiny",
        "--synthetic",
        "--no-wandb",
        "--trials",
        str(trials),
        "--workers",
        str(workers),
        "--sweep-config",
        str(scratch / "space.yaml"),
        "--pruner",
        "none",
        "--set",
        "train.batch_size=16",
        "--set",
        "train.optimizer=adam",
        "--set",
        f"train.epochs={epochs}",
        *(["--storage", storage] if storage else []),
    ]


def study_storage(results: Path, storage: str | None):
    """The study's storage as the workers open it (a server's reconnects after a restart)."""
    from avbench.sweep.storage import open_storage, resolve_storage_url

    return open_storage(resolve_storage_url(storage, results, EXPERIMENT))


def restart_database(server, stop: threading.Event, rng: random.Random, restarts: list[float]) -> None:
    """Stop the server and start it again DB_RESTARTS times, 5-60 s apart, 2-6 s down."""
    for _ in range(DB_RESTARTS):
        if stop.wait(rng.uniform(5.0, 60.0)):
            return
        down = rng.uniform(2.0, 6.0)
        server.stop()
        print(f"database stopped for {down:.1f} s", flush=True)
        time.sleep(down)
        server.start()
        restarts.append(down)


def worker_pids(parent: int) -> list[int]:
    """The parent's live children (a killed one stays a zombie until the parent reaps it)."""
    try:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    except OSError:
        return []
    alive = []
    for pid in children:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.append(int(pid))
        except OSError:
            continue
    return alive


def checkpointed(run: Path) -> int:
    """Epochs the run's last.pt holds (its metrics lines while last.pt exists)."""
    metrics = run / "metrics.jsonl"
    if not (run / "last.pt").exists() or not metrics.exists():
        return 0
    return len(metrics.read_text().splitlines())


def running_trial(study, pid: int) -> str | None:
    import optuna

    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.user_attrs.get("worker", "").endswith(f":{pid}"):
            return trial.user_attrs.get("run_id")
    return None


def unleash(
    proc: subprocess.Popen, results: Path, kills: int, rng: random.Random, storage
) -> list[tuple[str | None, int]]:
    """SIGKILL a random worker whose trial has a checkpoint `kills` times, a random 1-5 s
    apart; returns (run id, epochs checkpointed) of what each kill hit."""
    import optuna

    study = optuna.load_study(study_name=STUDY, storage=storage)
    hits: list[tuple[str | None, int]] = []
    while len(hits) < kills and proc.poll() is None:
        time.sleep(rng.uniform(1.0, 5.0))
        training = {pid: run for pid in worker_pids(proc.pid) if (run := running_trial(study, pid))}
        # A worker whose trial has checkpointed an epoch since it was last hit: on a loaded
        # machine a fresh worker's first epoch outlasts the pause, and kills before any
        # checkpoint would test only the restart, never the resume.
        ready = {
            pid: (run, done)
            for pid, run in training.items()
            if (done := checkpointed(results / "runs" / EXPERIMENT / run)) and (run, done) not in hits
        }
        if not ready:
            continue
        pid = rng.choice(sorted(ready))
        run_id, done = ready[pid]
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        hits.append((run_id, done))
        print(f"kill {len(hits)}: worker pid {pid}, trial {run_id or '(none yet)'} at epoch {done}", flush=True)
    return hits


def check(results: Path, args, hits: list[tuple[str | None, int]], output: str, storage) -> bool:
    import optuna

    from avbench.results.records import iter_records

    trials = optuna.load_study(study_name=STUDY, storage=storage).trials
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    run_ids = [t.user_attrs["run_id"] for t in finished]
    records = {r.run_id: r for r in iter_records(results) if r.sweep == STUDY}
    done = {run_id for run_id, r in records.items() if r.status in ("completed", "pruned")}
    once = all(
        [json.loads(line)["epoch"] for line in (results / "runs" / EXPERIMENT / run_id / "metrics.jsonl").open()]
        == list(range(1, records[run_id].epochs_run + 1))
        for run_id in run_ids
    )
    resumed = [(run_id, at, records[run_id].resumed_from_epoch) for run_id, at in hits if run_id]
    restarts = output.count("restarting it")
    attempts = sum(t.state.name == "FAIL" for t in trials)
    spent = sum(len(t.intermediate_values) for t in trials) + len(hits)
    bound = args.trials * args.epochs + len(hits) + restarts
    verdicts = {
        f"exactly {args.trials} finished trials ({len(finished)})": len(finished) == args.trials,
        f"none counted twice ({len(set(run_ids))} distinct run ids, {len(done)} finished records)": len(set(run_ids))
        == len(run_ids)
        == len(done)
        == args.trials,
        "every epoch once in each finished run's metrics": once,
        f"every killed trial resumed from its last checkpoint ({len(resumed)} killed mid-trial)": all(
            resumed_from >= at for _, at, resumed_from in resumed
        ),
        f"trial-epochs spent {spent} <= {args.trials} x {args.epochs} + {len(hits)} + {restarts} restarts = {bound}": (
            spent <= bound
        ),
    }
    print(f"{len(hits)} kills, {restarts} worker restarts, {attempts} killed attempts re-queued")
    for run_id, at, resumed_from in resumed:
        print(f"  {run_id}: killed at epoch {at}, finished run resumed from epoch {resumed_from}")
    for line, ok in verdicts.items():
        print(f"{'ok  ' if ok else 'FAIL'} {line}")
    return all(verdicts.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL study, restarted twice")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        server = None
        if args.postgres:
            from tests.postgres import postgres_instance

            server = stack.enter_context(postgres_instance())
        raise SystemExit(0 if chaos(args, Path(scratch), server) else 1)


def chaos(args, scratch: Path, server) -> bool:
    """Warm the cache, then run the sweep under the kills (and database restarts)."""
    rng = random.Random(args.seed)
    url = server.url if server else None
    (scratch / "space.yaml").write_text(SPACE)
    env = {**os.environ, "PYTHONPATH": str(REPO), "AVBENCH_DATA": str(scratch / "data")}
    # Warm-up: writes the stand-in and the feature cache, so the kills hit training.
    (scratch / "cache").mkdir()
    for name in ("warm", "chaos"):
        (scratch / name).mkdir()
        (scratch / name / "cache").symlink_to(scratch / "cache")
    warm = command(scratch / "warm", scratch, 1, 1, 1, None)
    subprocess.run(warm, cwd=REPO, env=env, check=True, capture_output=True)
    results = scratch / "chaos"
    started = time.perf_counter()
    proc = subprocess.Popen(
        command(results, scratch, args.trials, args.epochs, 2, url),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    while not (results / "studies" / STUDY).exists():  # the study exists: its storage is made
        time.sleep(0.1)
    storage = study_storage(results, url)
    stop, downs = threading.Event(), []
    restarter = threading.Thread(target=restart_database, args=(server, stop, random.Random(args.seed + 1), downs))
    if server:
        restarter.start()
    hits = unleash(proc, results, args.kills, rng, storage)
    output = proc.communicate()[0]
    stop.set()
    if server:
        restarter.join()
    wall = time.perf_counter() - started
    print(
        f"{EXPERIMENT} --preset tiny: {args.trials} trials x {args.epochs} epochs, --workers 2, "
        f"exit {proc.returncode}, {wall:.0f} s, load average {os.getloadavg()[0]:.2f}"
    )
    if server:
        print(f"{len(downs)} database restarts ({', '.join(f'{d:.1f}' for d in downs)} s down)")
    ok = (
        check(results, args, hits, output, storage)
        and proc.returncode == 0
        and (not server or len(downs) == DB_RESTARTS)
    )
    if not ok:
        print(output[-3000:])
    return ok


if __name__ == "__main__":
    main()
