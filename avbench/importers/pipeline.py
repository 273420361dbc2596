"""Write converted pipeline steps as files, and run them in order as avbench commands.

An imported pipeline is a folder: experiments/<name>.yaml (one per train or tune step),
sweeps/<name>.yaml (one per tune step) and pipeline.yaml (the steps in order: which command
runs which experiment). Each step runs as its own `avbench` process, as a user would type it,
so a step that fails is reported and the next one still runs (the seed collected errors the
same way).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from avbench.errors import ConfigError
from avbench.importers.emotions_classify import Step

PLAN = "pipeline.yaml"


def write_steps(steps: list[Step], out: Path) -> Path:
    """The steps' experiment and sweep files under `out`, and the plan; returns the plan's path."""
    for folder in ("experiments", "sweeps"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for step in steps:
        if step.config is not None:
            text = yaml.safe_dump(step.config, sort_keys=False, allow_unicode=True)
            (out / "experiments" / f"{step.experiment}.yaml").write_text(text, encoding="utf-8")
        if step.sweep is not None:
            (out / "sweeps" / f"{step.experiment}.yaml").write_text(yaml.safe_dump(step.sweep, sort_keys=False))
    plan = {"steps": [{"command": step.command, "experiment": step.experiment} for step in steps]}
    path = out / PLAN
    path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
    return path


def read_plan(out: Path) -> list[tuple[str, str]]:
    """(command, experiment) of every step of an imported pipeline folder."""
    from avbench.config import read_mapping

    steps = read_mapping(out / PLAN).get("steps")
    if not isinstance(steps, list) or not all(
        isinstance(s, dict) and {"command", "experiment"} <= set(s) for s in steps
    ):
        raise ConfigError(f"{out / PLAN}: expected steps: [{{command: run|sweep|show, experiment: NAME}}, …]")
    return [(str(s["command"]), str(s["experiment"])) for s in steps]


def step_argv(command: str, experiment: str, out: Path, run_options: list[str]) -> list[str]:
    """The avbench command line of one step; `run_options` (--preset, --synthetic, --set …) go to run and sweep."""
    path = str(out / "experiments" / f"{experiment}.yaml")
    if command == "run":
        return ["run", path, *run_options]
    if command == "sweep":
        return ["sweep", path, "--sweep-config", str(out / "sweeps" / f"{experiment}.yaml"), *run_options]
    if command == "show":
        return ["show", experiment, "--no-plots"]
    raise ConfigError(f"{out / PLAN}: unknown command {command!r} (run, sweep or show)")


def run_plan(
    out: Path, results: Path, run_options: list[str], echo: Callable[[str], None]
) -> list[tuple[str, str, int]]:
    """Every step in order, each an `avbench` process; (command, experiment, exit status) per step."""
    outcomes = []
    steps = read_plan(out)
    for number, (command, experiment) in enumerate(steps, start=1):
        argv = step_argv(command, experiment, out, run_options)
        echo(f"step {number}/{len(steps)}: avbench {' '.join(argv)}")
        status = subprocess.call([sys.executable, "-m", "avbench", "--results", str(results), *argv])
        outcomes.append((command, experiment, status))
    return outcomes
