"""Shared fixtures: every test works in its own directory with its own results/, empty
./experiments and ./sweeps (the built-ins come from the package), W&B offline, and one tiny synthetic CREMA-D shared by
the session (written once); `standin(task)` gives any task's tiny stand-in, also written once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
BUILTIN = REPO / "avbench" / "builtin"  # the experiments/ and sweeps/ that ship in the package
AVBENCH = [sys.executable, "-m", "avbench"]


def pytest_collection_modifyitems(config, items):
    """Files marked `heavy` (minutes of sweeps, kills and restarts each) go first, in their
    usual order. Under `-n auto --dist loadfile` each process then takes heavy files while
    there are any, and the hundreds of short ones fill both processes' ends; in name order a
    heavy file came last and ran alone for minutes while the other process sat idle."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)  # stable: files stay whole


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> Path:
    """AVBENCH_DATA for the session: the tiny cremad stand-in, written once."""
    from avbench.tasks.cremad import CremaD

    root = tmp_path_factory.mktemp("data")
    CremaD().synthesize(root / "cremad-tiny", size="tiny", seed=0)
    marker = root / "cremad-tiny" / ".avbench-synthetic"
    assert marker.exists()
    return root


@pytest.fixture(scope="session")
def standin(synthetic_data):
    """standin(task) → the root of the task's tiny stand-in, written once per session by
    `avbench data synth TASK --size tiny` into AVBENCH_DATA, where `--synthetic` runs at the
    tiny size find it too (so each task's stand-in is written once for the whole suite).
    Shared: tests that change files work on a copy."""
    from avbench.cli import cli as command

    def get(task: str) -> Path:
        root = synthetic_data / f"{task}-tiny"
        if not (root / ".avbench-synthetic").exists():
            result = CliRunner().invoke(command, ["data", "synth", task, "--out", str(root), "--size", "tiny"])
            assert result.exit_code == 0, result.output
        return root

    return get


@pytest.fixture
def workspace(tmp_path, monkeypatch, synthetic_data) -> Path:
    for folder in ("experiments", "sweeps"):
        (tmp_path / folder).mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AVBENCH_EXPERIMENTS", raising=False)
    monkeypatch.setenv("AVBENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("AVBENCH_DATA", str(synthetic_data))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    return tmp_path


@pytest.fixture
def cli(workspace):
    """Invoke the CLI in-process; returns the click Result and fails loudly on crashes."""
    from avbench.cli import cli as command

    def invoke(*args: str, expect: int = 0):
        result = CliRunner().invoke(command, list(args), catch_exceptions=True)
        if result.exit_code != expect:
            detail = result.output
            if result.exc_info and result.exception and not isinstance(result.exception, SystemExit):
                import traceback

                detail += "".join(traceback.format_exception(*result.exc_info))
            raise AssertionError(f"avbench {' '.join(args)} exited {result.exit_code}, expected {expect}:\n{detail}")
        return result

    return invoke


def run_avbench(*args: str, cwd: Path, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI as a user runs it: a separate process."""
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(REPO)}
    return subprocess.run([*AVBENCH, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)


TINY = ("--preset", "tiny", "--synthetic")
TINY_VALUES = ("--set", "train.lr=0.003", "--set", "train.batch_size=16", "--set", "train.optimizer=adam")


@pytest.fixture(scope="session")
def slurm_cluster():
    """A real one-node Slurm for the session (tests/slurm.py); skipped locally without Slurm,
    failed in CI, where `.ci/run` installs it."""
    from tests.slurm import SlurmUnavailable, slurm_cluster

    try:
        with slurm_cluster() as cluster:
            yield cluster
    except SlurmUnavailable as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"Slurm is required in CI (.ci/run installs it): {exc}")
        pytest.skip(f"no local Slurm could be started: {exc}")
