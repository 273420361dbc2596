"""Leaderboard rules on fabricated records: best on validation, test reported, kinds of data
never mixed, cross-validation folds merged into one mean ± std row."""

from __future__ import annotations

import statistics

import pytest

from avbench.results.leaderboard import leaderboard_rows, render_markdown
from avbench.results.records import RunRecord, iter_records, write_record


def record(run_id, val, test, status="completed", data_kind="synthetic", model="m", cv=None):
    return RunRecord(
        run_id=run_id,
        experiment=f"{model}-t",
        task="t",
        model=model,
        status=status,
        data_kind=data_kind,
        val={"acc": val, "uar": val, "macro_f1": val},
        test={"acc": test, "uar": test, "macro_f1": test} if test is not None else {},
        cv=cv,
    )


def test_best_validation_run_is_reported_with_its_test_score(tmp_path):
    for rec in [
        record("a", 0.7, 0.9),
        record("b", 0.8, 0.6),
        record("c", 0.95, None, status="pruned"),
        record("d", 0.99, 0.99, status="failed"),
    ]:
        write_record(tmp_path, rec)
    (row,) = leaderboard_rows(tmp_path)
    assert row["run_id"] == "b" and row["test/acc"] == 0.6  # chosen on validation, never on test
    assert row["n_trials"] == 3 and row["n_failed"] == 1


def test_real_synthetic_and_control_runs_are_never_ranked_together(tmp_path):
    write_record(tmp_path, record("real", 0.5, 0.5, data_kind="real"))
    write_record(tmp_path, record("syn", 0.9, 0.9, data_kind="synthetic"))
    write_record(tmp_path, record("shuf", 0.2, 0.2, data_kind="synthetic, shuffled train labels"))
    assert sorted(r["data"] for r in leaderboard_rows(tmp_path)) == [
        "real",
        "synthetic",
        "synthetic, shuffled train labels",
    ]


def test_cross_validation_folds_become_one_row_with_an_interval_over_the_folds(tmp_path):
    tests = [0.6, 0.7, 0.8]
    for fold, test in enumerate(tests, start=1):
        write_record(
            tmp_path, record(f"cv1-fold{fold}", 0.5 + fold / 10, test, cv={"group": "cv1", "fold": fold, "folds": 3})
        )
    # A second cross-validation that lost a fold is not a result.
    write_record(tmp_path, record("cv2-fold1", 0.99, 0.99, cv={"group": "cv2", "fold": 1, "folds": 3}))
    (row,) = leaderboard_rows(tmp_path)
    assert row["run_id"] == "cv1" and row["folds"] == 3 and row["n_trials"] == 1
    assert row["test/acc"] == pytest.approx(statistics.fmean(tests))
    assert row["n_runs"] == 3 and row["test/acc_std"] == pytest.approx(statistics.stdev(tests))
    half = 4.302653 * statistics.stdev(tests) / 3**0.5  # t(0.975, 2) · s / √n
    assert row["test/acc_ci95"] == pytest.approx([0.7 - half, 0.7 + half], abs=1e-6)
    assert f"0.7000 ± {half:.4f}" in render_markdown([row])


def test_cv_needs_a_task_with_folds(cli):
    result = cli(
        "run",
        "mel-stats-mlp-cremad",
        "--cv",
        "--synthetic",
        "--preset",
        "tiny",
        "--no-wandb",
        "--set",
        "train.lr=0.01",
        "--set",
        "train.weight_decay=0",
        "--set",
        "model_args.dropout=0",
        expect=1,
    )
    assert "has no folds; cross-validation needs predefined ones (esc50, esc10) or data.folds" in result.output


def test_cv_runs_every_esc10_fold_and_ranks_one_mean_and_std_row(cli, workspace):
    import json

    out = cli(
        "run",
        "mel-stats-mlp-esc10",
        "--cv",
        "--synthetic",
        "--preset",
        "tiny",
        "--no-wandb",
        "--set",
        "train.lr=0.01",
        "--set",
        "train.weight_decay=0.01",
        "--set",
        "model_args.dropout=0.1",
    ).output
    assert "5-fold cross-validation" in out and "test/acc=" in out and "±" in out
    folds = [r for r in iter_records(workspace / "results") if r.cv]
    assert sorted(r.cv["fold"] for r in folds) == [1, 2, 3, 4, 5]
    assert len({r.cv["group"] for r in folds}) == 1
    # Each fold tested on its own ESC fold: the test sets are disjoint and cover the data set.
    assert sum(r.data_sizes["test"] for r in folds) == sum(folds[0].data_sizes.values())
    (row,) = json.loads(cli("leaderboard", "--format", "json", "--task", "esc10").output)
    assert row["folds"] == 5 and row["n_trials"] == 1
    assert row["test/acc"] == pytest.approx(statistics.fmean(r.test["acc"] for r in folds))
