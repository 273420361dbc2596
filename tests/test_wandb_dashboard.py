"""What a run puts on its W&B page (read back from the offline files): lr and train acc per
epoch, the test confusion matrix and per-class table, the test metrics in the summary, the
best checkpoint as an artifact with tracking.log_model; `leaderboard --wandb` as a W&B Table;
`avbench sync` choosing the runs not yet synced and wrapping a real `wandb sync`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avbench.tracking import per_class_scores
from tests.conftest import TINY, TINY_VALUES
from tests.wandb_files import read_offline_run

VALUES = (*TINY_VALUES, "--set", "model_args.dropout=0.1", "--set", "train.weight_decay=0")


@pytest.fixture
def logged_run(cli, workspace) -> tuple[dict, Path]:
    cli("run", "mel-stats-mlp-cremad", *TINY, *VALUES, "--set", "tracking.log_model=true")
    (run_dir,) = sorted((workspace / "results" / "wandb").glob("offline-run-*"))
    return read_offline_run(run_dir), run_dir


def test_a_run_logs_lr_train_acc_the_confusion_matrix_and_its_checkpoint(logged_run, workspace) -> None:
    from avbench.results.records import iter_records

    logged, run_dir = logged_run
    (record,) = iter_records(workspace / "results")
    names = ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]
    epochs = [row for row in logged["history"] if "val/acc" in row]
    assert len(epochs) == record.epochs_run and all({"lr", "train/acc"} <= set(row) for row in epochs)
    assert logged["config"]["study"] is None and logged["config"]["trial"] is None
    assert "replicate" in logged["config"] and logged["run"]["group"] == "mel-stats-mlp-cremad"
    assert logged["summary"]["test/acc"] == record.test["acc"]
    # wandb.plot.confusion_matrix: its table in the summary, the chart (W&B's own preset) in the config
    assert logged["summary"]["test/confusion_matrix_table/_type"] == "table-file"
    chart = logged["config"]["_wandb/visualize/test/confusion_matrix"]
    assert chart["panel_type"] == "Vega2" and chart["panel_config"]["panelDefId"] == "wandb/confusion_matrix/v1"
    (matrix,) = run_dir.glob("files/media/table/test/confusion_matrix_table_*.table.json")
    cells = json.loads(matrix.read_text())
    assert cells["columns"] == ["Actual", "Predicted", "nPredictions"] and len(cells["data"]) == 36
    counts = {(actual, predicted): n for actual, predicted, n in cells["data"]}
    confusion = record.test["confusion"]
    assert all(counts[names[t], names[p]] == confusion[t][p] for t in range(6) for p in range(6))
    (table,) = run_dir.glob("files/media/table/test/per_class_*.table.json")
    rows = json.loads(table.read_text())["data"]
    assert [row[0] for row in rows] == names
    assert sum(row[4] for row in rows) == record.data_sizes["test"]
    model = [a for a in logged["artifacts"] if a["type"] == "model"]
    assert model == [{"name": f"mel-stats-mlp-cremad-{record.run_id}", "type": "model", "files": ["best.pt"]}]


def test_per_class_scores_from_a_confusion_matrix() -> None:
    rows = per_class_scores([[3, 1], [0, 4]], ["a", "b"])
    assert rows == [["a", 1.0, 0.75, pytest.approx(6 / 7), 4], ["b", 0.8, 1.0, pytest.approx(8 / 9), 4]]


def test_leaderboard_to_wandb_and_sync_selection(logged_run, cli, workspace, monkeypatch) -> None:
    _, run_dir = logged_run
    cli("leaderboard", "--format", "json", "--wandb")
    runs = sorted((workspace / "results" / "wandb").glob("offline-run-*"))
    (board,) = [r for r in runs if r != run_dir]
    logged = read_offline_run(board)
    assert logged["run"]["name"] == "leaderboard" and logged["summary"]["leaderboard/_type"] == "table-file"
    (table,) = board.glob("files/media/table/leaderboard_*.table.json")
    content = json.loads(table.read_text())
    assert "test/acc" in content["columns"] and content["data"][0][0] == "mel-stats-mlp-cremad"

    (board / "avbench-synced").write_text("")  # as after a sync that succeeded
    dry = cli("sync", "--dry-run").output
    assert f"would sync {run_dir}\n" in dry and str(board) not in dry.split("command:")[0]
    assert dry.strip().endswith(f"wandb sync {run_dir}")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(workspace))  # no ~/.netrc: not logged in
    assert "log in first" in cli("sync", expect=1).output
    # Logged in, but W&B is unreachable: the real `wandb sync` is stopped and the run stays unsynced.
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    failed = cli("sync", "--timeout", "5", expect=1).output
    assert failed == "Error: wandb sync did not finish within 5 s (is W&B reachable?)\n"
    assert not (run_dir / "avbench-synced").exists()
