"""Start-up cost of the commands people type most, and the fixed cost of a sweep, against a
bare Python interpreter and `import torch`.

`avbench --help` and `avbench leaderboard` must not import torch (target: --help ≤ 0.3 s).
A one-trial `avbench sweep mel-stats-mlp-cremad --preset tiny --synthetic` is timed end to
end against its trial's own wall time (the run record's `wall_time_s`): the difference is what
every sweep pays before and after training (target ≤ 2 s), shown beside `import torch`, which
any trial needs. The stand-in and the feature cache are written by a first, untimed sweep, so
the figures are those of every later sweep.

    python benchmarks/cli_startup.py [--repeats 5] [--sweep-repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from avbench.results.layout import record_paths

SWEEP_EXPERIMENT = "mel-stats-mlp-cremad"


def timed(args: list[str], repeats: int, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def sweep_once(results: Path, study: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds of the whole command, the trial's wall_time_s from its record)."""
    command = [sys.executable, "-m", "avbench", "--results", str(results), "sweep", SWEEP_EXPERIMENT]
    command += ["--preset", "tiny", "--synthetic", "--trials", "1", "--study", study]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - started
    records = [json.loads(path.read_text()) for path in record_paths(results)]
    trial = max((r for r in records if r.get("sweep") == study), key=lambda r: r["started_at"])
    return wall, float(trial["wall_time_s"])


def sweep_fixed_cost(repeats: int) -> list[tuple[float, float]]:
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "AVBENCH_DATA": str(Path(scratch) / "data"), "WANDB_MODE": "offline"}
        results = Path(scratch) / "results"
        sweep_once(results, "warm-up", env)
        return [sweep_once(results, f"timed-{i}", env) for i in range(repeats)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sweep-repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as empty:
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "avbench --help": [sys.executable, "-m", "avbench", "--help"],
            "avbench leaderboard": [sys.executable, "-m", "avbench", "--results", empty, "leaderboard"],
            "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        }
        base = timed(cases["python -c pass"], args.repeats)
        seconds = {}
        for name, command in cases.items():
            seconds[name] = timed(command, args.repeats)
            print(f"{name:28s} {seconds[name]:6.3f}s  ({seconds[name] / base:5.1f}x bare python)")
    runs = sweep_fixed_cost(args.sweep_repeats)
    wall = statistics.median(w for w, _ in runs)
    trial = statistics.median(t for _, t in runs)
    fixed = statistics.median(w - t for w, t in runs)
    torch_s = seconds["python -c 'import torch'"]
    print(f"one-trial tiny sweep         {wall:6.3f}s  (trial {trial:.3f}s, fixed cost {fixed:.3f}s)")
    print(f"fixed cost - import torch    {fixed - torch_s:6.3f}s  (fixed cost {fixed / torch_s:.1f}x import torch)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
