"""Sweep options as users meet them: `--dry-run`, `--storage` URLs and one-line errors.
(`avbench show` and optuna-dashboard on a real study are in test_sweep_workers.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from avbench.errors import StorageError
from avbench.sweep.storage import resolve_storage_url
from tests.conftest import TINY
from tests.postgres import free_port


def test_show_without_a_storage_is_one_line(cli, workspace):
    result = cli("show", "spectrogram-cnn-cremad", expect=1)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "no study storage" in lines[0] and "avbench sweep" in lines[0]


GRID = """\
method: grid
metric: {name: val/acc, goal: maximize}
parameters:
  train.lr: {values: [0.001, 0.003, 0.01]}
  train.batch_size: {values: [16, 32]}
  train.optimizer: {values: [adam, adamw]}
"""


def warm_the_feature_cache(workspace: Path) -> None:
    from avbench.catalog import load_experiment
    from avbench.data.cache import FeatureCache
    from avbench.data.dataset import prepare_data
    from avbench.preflight import resolve_data_root
    from avbench.registry import TASKS

    experiment = load_experiment("spectrogram-cnn-cremad", preset="tiny").resolve(
        {"train.lr": 0.003, "train.batch_size": 16, "train.optimizer": "adam"}
    )
    root, _ = resolve_data_root(experiment, synthetic=True)
    cache = FeatureCache(workspace / "results" / "cache" / "features")
    prepare_data(TASKS.get("cremad")(), root, experiment.data, cache)


def test_dry_run_prints_the_space_and_a_cost_estimate_without_creating_a_study(cli, workspace):
    out = cli("sweep", "spectrogram-cnn-cremad", *TINY, "--dry-run", "--set", "train.weight_decay=null").output
    assert "train.lr" in out and "float log-uniform [0.002, 0.01]" in out and "one of adam, adamw" in out
    assert "└ lion: train.lr" in out and "[0.0002, 0.0033]" in out  # the conditional tree: lion's own range
    assert "sweeps/spectrogram-cnn-cremad.yaml" in out and "experiments/spectrogram-cnn-cremad.yaml" in out
    assert "built-in default" in out and "--preset / --set" in out  # weight_decay: null and range from elsewhere
    assert "grid size: unbounded (train.lr, train.weight_decay continuous)" in out
    assert "feature cache cold" in out and "per trial of 2 epochs" in out and "for 2 trials" in out
    assert "(dry run: not created)" in out
    assert not (workspace / "results" / "studies").exists() and not (workspace / "results" / "cache").exists()

    (workspace / "grid.yaml").write_text(GRID)
    warm_the_feature_cache(workspace)  # as a sweep's first trial would
    out = cli(
        "sweep",
        "spectrogram-cnn-cremad",
        *TINY,
        "--dry-run",
        "--sweep-config",
        "grid.yaml",
        "--trials",
        "50",
        "--workers",
        "2",
    ).output
    assert "grid size: 12 combination(s)" in out and "sampler grid" in out
    assert "feature cache warm" in out and "2 workers" in out
    assert not (workspace / "results" / "studies").exists()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("study.db", "sqlite:///{cwd}/study.db"),
        ("sqlite:///rel/study.db", "sqlite:///{cwd}/rel/study.db"),
        ("runs/study.log", "journal://{cwd}/runs/study.log"),
        ("journal:///tmp/x.log", "journal:///tmp/x.log"),
        ("postgresql://u@db:5432/avbench", "postgresql+psycopg2://u@db:5432/avbench"),
    ],
)
def test_storage_urls_are_made_absolute_and_explicit(raw, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_storage_url(raw, tmp_path, "x") == expected.format(cwd=tmp_path.resolve())


@pytest.mark.parametrize("raw", ["mysql://u@h/db", "study.txt", "postgres://u@h/db"])
def test_unsupported_storages_are_refused(raw):
    with pytest.raises(StorageError):
        resolve_storage_url(raw, Path("results"), "x")


def test_an_unreachable_storage_is_one_line(cli, workspace):
    result = cli(
        "sweep",
        "spectrogram-cnn-cremad",
        *TINY,
        "--storage",
        f"postgresql://nobody@127.0.0.1:{free_port()}/x",
        expect=1,
    )
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: cannot open storage postgresql+psycopg2://nobody@127.0.0.1")
