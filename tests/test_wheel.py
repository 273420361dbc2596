"""The package as a user installs it: a wheel of the checkout, installed non-editable into a
fresh virtual environment, runs from a folder that is not the checkout.

The new environment reuses the dependencies already installed (a .pth file lists this
interpreter's site-packages; .pth paths come after the environment's own site-packages, so the
wheel's avbench wins over any editable install), so nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from tests.conftest import REPO

TINY_RUN = (
    "run",
    "mel-stats-mlp-cremad",
    "--preset",
    "tiny",
    "--synthetic",
    "--no-wandb",
    "--set",
    "train.lr=0.003",
    "--set",
    "train.weight_decay=0.0001",
    "--set",
    "model_args.dropout=0.1",
    "--set",
    "train.epochs=1",
)


def _build_wheel(tmp: Path) -> Path:
    """A wheel of the checkout's sources, built from a copy so no build files land in it."""
    source = tmp / "source"
    shutil.copytree(REPO / "avbench", source / "avbench", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    wheels = tmp / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, source],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = wheels.glob("avbench-*.whl")
    return wheel


def _fresh_venv(tmp: Path, wheel: Path) -> Path:
    """A venv holding only the wheel, with this interpreter's dependencies reachable."""
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    own = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    shared = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(own, "shared-dependencies.pth").write_text("".join(f"{path}\n" for path in sorted(shared)))
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
        check=True,
        capture_output=True,
        text=True,
    )
    return env_dir


def test_a_wheel_installed_in_a_fresh_venv_runs_builtin_experiments_from_any_folder(tmp_path, synthetic_data):
    env_dir = _fresh_venv(tmp_path, _build_wheel(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "AVBENCH_EXPERIMENTS")}
    env.update(AVBENCH_RESULTS=str(elsewhere / "results"), AVBENCH_DATA=str(synthetic_data), WANDB_MODE="offline")

    def avbench(*args: str) -> subprocess.CompletedProcess:
        command = [env_dir / "bin" / "avbench", *args]
        return subprocess.run(command, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)

    where = subprocess.run(
        [env_dir / "bin" / "python", "-c", "import avbench; print(avbench.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(env_dir)), where  # the wheel's copy, not the checkout's
    listed = avbench("list", "experiments")
    assert listed.returncode == 0, listed.stderr
    rows = dict(line.split()[:2] for line in listed.stdout.splitlines()[1:-1])
    builtin = sorted(path.stem for path in (REPO / "avbench" / "builtin" / "experiments").glob("*.yaml"))
    assert sorted(rows) == builtin and set(rows.values()) == {"built-in"}
    run = avbench(*TINY_RUN)
    assert run.returncode == 0, run.stdout + run.stderr
    (record,) = (elsewhere / "results" / "runs" / "mel-stats-mlp-cremad").glob("*/record.json")
    assert json.loads(record.read_text())["status"] == "completed"
