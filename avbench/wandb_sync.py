"""W&B beyond one run: the leaderboard as a W&B Table (`avbench leaderboard --wandb`) and
uploading the offline runs under results/ (`avbench sync`, wrapping `wandb sync`).

A run counts as synced when `wandb sync` left its own `<run>.wandb.synced` marker or avbench
wrote SYNCED after a sync that exited 0, so a second `avbench sync` uploads nothing twice.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from avbench.errors import AvbenchError
from avbench.results.layout import run_files, wandb_runs_dir
from avbench.tracking import configure_wandb_env, wandb_dir, wandb_logged_in

SYNCED = "avbench-synced"  # written into an offline run's folder once `wandb sync` uploaded it
LEADERBOARD_TABLE = "leaderboard"


def offline_runs(results: Path) -> list[Path]:
    """Every offline run folder W&B wrote under results/, oldest first."""
    return sorted(wandb_runs_dir(results).glob("offline-run-*"))


def is_synced(run: Path) -> bool:
    return (run / SYNCED).exists() or any(run.glob("*.wandb.synced"))


def pending_runs(results: Path) -> list[Path]:
    return [run for run in offline_runs(results) if not is_synced(run)]


def sync_command(runs: list[Path]) -> list[str]:
    """The `wandb sync` command line that uploads `runs` (W&B's CLI of this environment)."""
    beside = Path(sys.executable).with_name("wandb")
    executable = str(beside) if beside.exists() else shutil.which("wandb") or "wandb"
    return [executable, "sync", *(str(run) for run in runs)]


def sync_runs(runs: list[Path], *, timeout: float = 600) -> None:
    """Upload `runs`; marks each as synced when `wandb sync` succeeds, else one line saying why."""
    if not wandb_logged_in():
        raise AvbenchError("avbench sync uploads to W&B: log in first (`wandb login` or WANDB_API_KEY)")
    try:
        # A session of its own: on a timeout its whole group goes (wandb sync starts a service).
        process = subprocess.Popen(
            sync_command(runs), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
    except OSError as exc:
        raise AvbenchError(f"cannot start wandb sync: {exc.strerror or exc}") from None
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise AvbenchError(f"wandb sync did not finish within {timeout:g} s (is W&B reachable?)") from None
    if process.returncode != 0:
        lines = [line.strip() for line in (err + out).splitlines() if line.strip()]
        raise AvbenchError(f"wandb sync failed (exit {process.returncode}): {lines[-1] if lines else 'no output'}")
    for run in runs:
        (run / SYNCED).write_text("synced by avbench sync\n")


def _project_of(results: Path, row: dict[str, Any]) -> tuple[str, str | None]:
    """The W&B project (and entity) the row's run logged to, from its config.yaml."""
    try:
        config = yaml.safe_load(run_files(results, row["experiment"], row["run_id"]).config.read_text())
        tracking = config.get("tracking") or {}
        return str(tracking.get("project") or "avbench"), tracking.get("entity")
    except (OSError, yaml.YAMLError, AttributeError):
        return "avbench", None  # a cross-validation row: its folds share the experiment's project


def _cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list | tuple) else value


def log_leaderboard(results: Path, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """One W&B run per project the rows' experiments log to, holding their rows as the Table
    `leaderboard` (every column the rows carry). Returns (project, run id) per run."""
    import wandb

    configure_wandb_env()
    by_project: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for row in rows:
        by_project.setdefault(_project_of(results, row), []).append(row)
    logged = []
    for (project, entity), members in by_project.items():
        columns = list(dict.fromkeys(key for row in members for key in row))
        table = wandb.Table(columns=columns, data=[[_cell(row.get(c)) for c in columns] for row in members])
        run = wandb.init(
            project=project, entity=entity, job_type="leaderboard", name="leaderboard", dir=str(wandb_dir(results))
        )
        run.log({LEADERBOARD_TABLE: table})
        logged.append((project, run.id))
        run.finish()
    return logged
