"""Start-up cost of the commands people type most, and the fixed cost of a sweep, against a
bare Python interpreter and `import torch`.

`avbench --help` and `avbench leaderboard` must not import torch (target: --help ≤ 0.3 s).
A one-trial `avbench sweep mel-stats-mlp-cremad --preset tiny --synthetic` is timed end to
end against its trial's own wall time (the run record's `wall_time_s`): the difference is what
every sweep pays before and after training (target ≤ 2 s), shown beside `import torch`, which
any trial needs. The stand-in and the feature cache are written by a first, untimed sweep, so
the figures are those of every later sweep. Each command's CPU seconds (user + system, from
the child's resource usage) are printed beside its wall time: on a busy machine they say
what the wall time would be on an idle one.

With `--against DIR` (another checkout of avbench, e.g. `git worktree add /tmp/old main`) the
sweeps alternate between this checkout and DIR, so the two are compared side by side under the
same load, as ratios.

    python benchmarks/cli_startup.py [--repeats 5] [--sweep-repeats 3] [--against DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from avbench.results.layout import record_paths

SWEEP_EXPERIMENT = "mel-stats-mlp-cremad"
REPO = Path(__file__).resolve().parents[1]


def run_timed(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `args`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, env=env, cwd=cwd)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def timed(args: list[str], repeats: int) -> tuple[float, float]:
    runs = [run_timed(args) for _ in range(repeats)]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def sweep_once(results: Path, study: str, env: dict[str, str]) -> tuple[float, float, float]:
    """(wall and CPU seconds of the whole command, the trial's wall_time_s from its record)."""
    command = [sys.executable, "-m", "avbench", "--results", str(results), "sweep", SWEEP_EXPERIMENT]
    command += ["--preset", "tiny", "--synthetic", "--trials", "1", "--study", study]
    wall, cpu = run_timed(command, env, cwd=results.parent)  # not a checkout: PYTHONPATH picks the code
    records = [json.loads(path.read_text()) for path in record_paths(results)]
    trial = max((r for r in records if r.get("sweep") == study), key=lambda r: r["started_at"])
    return wall, cpu, float(trial["wall_time_s"])


def sweep_runs(repeats: int, checkouts: list[Path]) -> dict[Path, list[tuple[float, float, float]]]:
    """Each checkout's timed sweeps, taken in turn (one of each, then the next round)."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "AVBENCH_DATA": str(Path(scratch) / "data"), "WANDB_MODE": "offline"}
        envs = {checkout: {**env, "PYTHONPATH": str(checkout)} for checkout in checkouts}
        results = Path(scratch) / "results"
        sweep_once(results, "warm-up", envs[checkouts[0]])
        runs: dict[Path, list[tuple[float, float, float]]] = {checkout: [] for checkout in checkouts}
        for i in range(repeats):
            for n, checkout in enumerate(checkouts):
                runs[checkout].append(sweep_once(results, f"timed-{n}-{i}", envs[checkout]))
        return runs


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sweep-repeats", type=int, default=3)
    parser.add_argument("--against", type=Path, default=None, help="another avbench checkout to compare with")
    args = parser.parse_args()
    print(f"load average before: {load()}")
    with tempfile.TemporaryDirectory() as empty:
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "avbench --help": [sys.executable, "-m", "avbench", "--help"],
            "avbench leaderboard": [sys.executable, "-m", "avbench", "--results", empty, "leaderboard"],
            "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        }
        seconds = {name: timed(command, args.repeats) for name, command in cases.items()}
    base = seconds["python -c pass"][0]
    for name, (wall, cpu) in seconds.items():
        print(f"{name:28s} {wall:7.3f}s wall ({wall / base:5.1f}x bare python)  {cpu:6.3f}s CPU")
    checkouts = [REPO] + ([args.against.resolve()] if args.against else [])
    torch_wall = seconds["python -c 'import torch'"][0]
    medians = {}
    for checkout, runs in sweep_runs(args.sweep_repeats, checkouts).items():
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        trial, fixed = statistics.median(r[2] for r in runs), statistics.median(r[0] - r[2] for r in runs)
        medians[checkout] = cpu, fixed
        print(f"{checkout}:")
        print(f"  one-trial tiny sweep       {wall:7.3f}s wall  {cpu:6.3f}s CPU  (trial {trial:.3f}s wall)")
        print(f"  fixed cost (wall - trial)  {fixed:7.3f}s wall  = {fixed / torch_wall:.2f}x import torch")
        print(f"  beyond import torch        {fixed - torch_wall:7.3f}s wall  (target: at most 2 s)")
    if args.against:
        (cpu, fixed), (cpu_other, fixed_other) = medians[REPO], medians[checkouts[1]]
        print(f"this / --against: CPU {cpu / cpu_other:.2f}x, fixed cost {fixed / fixed_other:.2f}x")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
