"""Looking at sweeps: `avbench show` (best trials, states, importances, PNG plots), the
storage opened by optuna-dashboard, `--dry-run`, and storage URLs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from avbench.errors import StorageError
from avbench.results import iter_records
from avbench.sweep.storage import resolve_storage_url
from tests.conftest import TINY
from tests.postgres import free_port

STUDY = "spectrogram-cnn-cremad-tiny-synthetic"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def dashboard_command() -> str:
    beside_python = Path(sys.executable).parent / "optuna-dashboard"
    found = str(beside_python) if beside_python.exists() else shutil.which("optuna-dashboard")
    assert found, "optuna-dashboard is not installed (pip install -e '.[test]')"
    return found


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_show_reports_a_study_and_optuna_dashboard_opens_its_storage(cli, workspace):
    cli("sweep", "spectrogram-cnn-cremad", *TINY, "--no-wandb", "--trials", "3", "--pruner", "none")
    out = cli("show", "spectrogram-cnn-cremad", "--top", "2").output
    assert f"study {STUDY}" in out and "3 complete" in out
    records = sorted((r for r in iter_records(workspace / "results") if r.sweep == STUDY),
                     key=lambda r: (r.val["acc"], -r.trial), reverse=True)
    best = records[0]
    assert best.run_id in out and f"{best.test['acc']:.4f}" in out  # test metrics come from the run record
    assert records[2].run_id not in out  # --top 2
    assert "parameter importances" in out and all(p in out for p in ("train.lr", "train.batch_size"))
    plots = [Path(line.split("plot: ", 1)[1].strip()) for line in out.splitlines() if line.startswith("plot: ")]
    assert sorted(p.name for p in plots) == ["optimization_history.png", "parallel_coordinate.png",
                                             "param_importances.png"]
    for plot in plots:
        assert plot.parent == workspace / "results" / "studies" / STUDY
        data = plot.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, plot

    storage = resolve_storage_url(None, workspace / "results", "spectrogram-cnn-cremad")
    port = free_port()
    server = subprocess.Popen([dashboard_command(), storage, "--host", "127.0.0.1", "--port", str(port), "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while True:
            assert server.poll() is None, server.stderr.read()
            try:
                studies = get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
                break
            except OSError:
                assert time.time() < deadline, "optuna-dashboard never answered"
                time.sleep(0.3)
        ours = next(s for s in studies if s["study_name"] == STUDY)
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{ours['study_id']}")
        assert len(detail["trials"]) == 3
        assert {t["state"] for t in detail["trials"]} == {"Complete"}
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_show_errors_are_one_line(cli, workspace):
    result = cli("show", "spectrogram-cnn-cremad", expect=1)
    assert "no study storage" in result.output and "avbench sweep" in result.output
    cli("sweep", "spectrogram-cnn-cremad", *TINY, "--no-wandb", "--trials", "1", "--set", "train.epochs=1")
    result = cli("show", "spectrogram-cnn-cremad", "--study", STUDY[:-2], expect=1)
    assert f"did you mean '{STUDY}'" in result.output
    out = cli("show", "spectrogram-cnn-cremad", "--no-plots").output
    assert "importances need at least 2 completed trials" in out and "plot:" not in out


GRID = """\
method: grid
metric: {name: val/acc, goal: maximize}
parameters:
  train.lr: {values: [0.001, 0.003, 0.01]}
  train.batch_size: {values: [16, 32]}
  train.optimizer: {values: [adam, adamw]}
"""


def test_dry_run_prints_the_space_and_a_cost_estimate_without_creating_a_study(cli, workspace):
    out = cli("sweep", "spectrogram-cnn-cremad", *TINY, "--dry-run", "--set", "train.weight_decay=null").output
    assert "train.lr" in out and "float log-uniform [0.002, 0.01]" in out and "one of adam, adamw" in out
    assert "sweeps/spectrogram-cnn-cremad.yaml" in out and "experiments/spectrogram-cnn-cremad.yaml" in out
    assert "built-in default" in out and "--preset / --set" in out  # weight_decay: null and range from elsewhere
    assert "grid size: unbounded (train.lr, train.weight_decay continuous)" in out
    assert "feature cache cold" in out and "per trial of 2 epochs" in out and "for 2 trials" in out
    assert "(dry run: not created)" in out
    assert not (workspace / "results" / "studies").exists() and not (workspace / "results" / "cache").exists()

    (workspace / "grid.yaml").write_text(GRID)
    cli("run", "spectrogram-cnn-cremad", *TINY, "--no-wandb", "--set", "train.lr=0.003", "--set",
        "train.batch_size=16", "--set", "train.optimizer=adam", "--set", "train.epochs=1")  # warms the feature cache
    out = cli("sweep", "spectrogram-cnn-cremad", *TINY, "--dry-run", "--sweep-config", "grid.yaml",
              "--trials", "50", "--workers", "2").output
    assert "grid size: 12 combination(s)" in out and "sampler grid" in out
    assert "feature cache warm" in out and "2 workers" in out
    assert not (workspace / "results" / "studies").exists()


@pytest.mark.parametrize(("raw", "expected"), [
    ("study.db", "sqlite:///{cwd}/study.db"),
    ("sqlite:///rel/study.db", "sqlite:///{cwd}/rel/study.db"),
    ("runs/study.log", "journal://{cwd}/runs/study.log"),
    ("journal:///tmp/x.log", "journal:///tmp/x.log"),
    ("postgresql://u@db:5432/avbench", "postgresql+psycopg2://u@db:5432/avbench"),
])
def test_storage_urls_are_made_absolute_and_explicit(raw, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_storage_url(raw, tmp_path, "x") == expected.format(cwd=tmp_path.resolve())


@pytest.mark.parametrize("raw", ["mysql://u@h/db", "study.txt", "postgres://u@h/db"])
def test_unsupported_storages_are_refused(raw):
    with pytest.raises(StorageError):
        resolve_storage_url(raw, Path("results"), "x")


def test_an_unreachable_storage_is_one_line(cli, workspace):
    result = cli("sweep", "spectrogram-cnn-cremad", *TINY, "--storage", f"postgresql://nobody@127.0.0.1:{free_port()}/x",
                 expect=1)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: cannot open storage postgresql+psycopg2://nobody@127.0.0.1")
