"""Start-up cost of the commands people type most, against a bare Python interpreter.

`avbench --help` and `avbench leaderboard` must not import torch (target: --help ≤ 0.3 s).

    python benchmarks/cli_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time


def timed(args: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as empty:
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "avbench --help": [sys.executable, "-m", "avbench", "--help"],
            "avbench leaderboard": [sys.executable, "-m", "avbench", "--results", empty, "leaderboard"],
            "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        }
        base = timed(cases["python -c pass"], args.repeats)
        for name, command in cases.items():
            seconds = timed(command, args.repeats)
            print(f"{name:28s} {seconds:6.3f}s  ({seconds / base:5.1f}x bare python)")


if __name__ == "__main__":
    main()
