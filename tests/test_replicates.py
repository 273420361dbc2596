"""Replicates, controls and paired comparisons through the CLI on the tiny synthetic CREMA-D,
and the leaderboard's statistics on fabricated records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avbench.results.layout import run_files
from avbench.results.leaderboard import leaderboard_rows, render_markdown
from avbench.results.predictions import read_predictions, write_predictions
from avbench.results.records import RunRecord, iter_records, write_record
from tests.conftest import TINY

TINY_MLP = ("--no-wandb",)


def test_replicates_are_trained_once_and_k_can_be_raised(cli, workspace):
    results = workspace / "results"
    out = cli("sweep", "mel-stats-mlp-cremad", *TINY, *TINY_MLP, "--trials", "1", "--replicates", "2").output
    assert "replicate 1 of trial 0" in out
    (trial,) = [r for r in iter_records(results) if r.replicate_of is None]
    (replicate,) = [r for r in iter_records(results) if r.replicate_of == trial.run_id]
    assert replicate.replicate == 1 and replicate.seed == trial.seed + 1 and replicate.searched == trial.searched
    for run in (trial, replicate):  # every run keeps its per-clip test predictions
        saved = read_predictions(run_files(results, run.experiment, run.run_id).predictions)
        assert len(saved.file_ids) == run.data_sizes["test"] and saved.probabilities.shape[1] == 6
        assert np.mean(saved.predictions == saved.labels) == pytest.approx(run.test["acc"])
    (row,) = json.loads(cli("leaderboard", "--format", "json").output)
    assert row["n_runs"] == 2 and row["n_trials"] == 1
    assert row["test/acc"] == pytest.approx((trial.test["acc"] + replicate.test["acc"]) / 2)
    assert row["chance"] == pytest.approx(1 / 6) and row["majority"] == pytest.approx(1 / 6)  # balanced stand-in

    stamp = run_files(results, replicate.experiment, replicate.run_id).record.stat().st_mtime_ns
    again = cli("replicate", "mel-stats-mlp-cremad", *TINY, *TINY_MLP, "--seeds", "2").output
    assert "0 trained now" in again
    assert run_files(results, replicate.experiment, replicate.run_id).record.stat().st_mtime_ns == stamp
    more = cli("replicate", "mel-stats-mlp-cremad", *TINY, *TINY_MLP, "--seeds", "3").output
    assert "1 trained now" in more and f"replicate 2 of trial 0: seed {trial.seed + 2}" in more
    (row,) = json.loads(cli("leaderboard", "--format", "json").output)
    assert row["n_runs"] == 3 and len(row["test/acc_ci95"]) == 2 and row["test/acc_std"] is not None

    cli("control", "mel-stats-mlp-cremad", *TINY, *TINY_MLP)
    real, control = sorted(json.loads(cli("leaderboard", "--format", "json").output), key=lambda r: r["is_control"])
    assert control["data"] == "synthetic, shuffled train labels" and control["run_id"] == f"control-{trial.run_id}"
    assert real["control_test"] == control["test/acc"] and real["beats_control"] is not None


def fabricated(results, run_id, experiment, val, test, *, loss=1.0, kind="synthetic", replicate_of=None, counts=()):
    write_record(
        results,
        RunRecord(
            run_id=run_id,
            experiment=experiment,
            task="t",
            model=experiment,
            status="completed",
            data_kind=kind,
            val={"acc": val, "uar": val, "macro_f1": val, "loss": loss},
            test={"acc": test, "uar": test, "macro_f1": test},
            replicate_of=replicate_of,
            replicate=1 if replicate_of else None,
            test_class_counts=list(counts),
        ),
    )


def test_a_validation_tie_is_broken_by_validation_loss_and_said(tmp_path):
    fabricated(tmp_path, "a", "m", 1.0, 0.9, loss=0.5)
    fabricated(tmp_path, "b", "m", 1.0, 0.6, loss=0.2)
    (row,) = leaderboard_rows(tmp_path)
    assert row["run_id"] == "b" and row["tie_broken"] and "broken by val/loss" in row["selection"]
    assert row["n_runs"] == 1 and row["test/acc_ci95"] is None and "1 run: no interval" in render_markdown([row])


def test_overlapping_rows_are_tied_and_a_row_below_its_control_is_flagged(tmp_path):
    for i, test in enumerate((0.70, 0.74, 0.72)):
        fabricated(tmp_path, f"a{i}", "a", 0.8, test, replicate_of="a0" if i else None, counts=(3, 1))
    for i, test in enumerate((0.69, 0.73)):
        fabricated(tmp_path, f"b{i}", "b", 0.8, test, replicate_of="b0" if i else None)
    fabricated(tmp_path, "c0", "c", 0.8, 0.30)
    for i, test in enumerate((0.32, 0.36)):  # c at 0.30 sits inside its control's interval
        fabricated(
            tmp_path, f"s{i}", "c", 0.5, test, kind="synthetic, shuffled train labels", replicate_of="s0" if i else None
        )
    rows = {r["experiment"] + (" control" if r["is_control"] else ""): r for r in leaderboard_rows(tmp_path)}
    assert [r["experiment"] for r in leaderboard_rows(tmp_path)][:3] == ["a", "b", "c"]  # sorted by test mean
    assert rows["a"]["n_runs"] == 3 and rows["a"]["majority"] == 0.75 and rows["a"]["chance"] == 0.5
    assert rows["b"]["tied"] and not rows["c"]["tied"]
    assert rows["c"]["beats_control"] is False and "DOES NOT BEAT ITS CONTROL" in render_markdown([rows["c"]])
    assert rows["a"]["beats_control"] is None


def test_a_row_above_its_control_says_it_beats_it_only_when_the_intervals_are_apart(tmp_path):
    for i, test in enumerate((0.30, 0.60)):  # mean 0.45 above the control, but a wide interval
        fabricated(tmp_path, f"w{i}", "w", 0.8, test, replicate_of="w0" if i else None)
    fabricated(tmp_path, "s0", "w", 0.2, 0.17, kind="synthetic, shuffled train labels")
    (wide,) = [r for r in leaderboard_rows(tmp_path) if not r["is_control"]]
    assert wide["beats_control"] and not wide["control_separated"]
    assert "above its control (0.1700) but the intervals overlap" in render_markdown([wide])
    for i, test in enumerate((0.44, 0.46)):  # the same mean with a narrow interval
        fabricated(tmp_path, f"w{i}", "w", 0.8, test, replicate_of="w0" if i else None)
    (narrow,) = [r for r in leaderboard_rows(tmp_path) if not r["is_control"]]
    assert narrow["control_separated"] and "beats its control (0.1700)" in render_markdown([narrow])


def predictions_file(results, experiment, run_id, ids, labels, preds):
    probabilities = np.eye(3)[preds]
    outputs = {None: {"labels": np.array(labels), "predictions": np.array(preds), "probabilities": probabilities}}
    write_predictions(run_files(results, experiment, run_id).predictions, ids, outputs)


def test_compare_pairs_the_same_clips_and_refuses_different_ones(cli, workspace):
    results = workspace / "results"
    rng = np.random.default_rng(0)
    ids = [f"AudioWAV/clip{i:03d}.wav" for i in range(120)]
    labels = rng.integers(0, 3, 120)
    good = np.where(rng.random(120) < 0.9, labels, (labels + 1) % 3)
    poor = np.where(rng.random(120) < 0.5, labels, (labels + 2) % 3)
    for experiment, preds in (("good", good), ("poor", poor)):
        fabricated(results, "r0", experiment, 0.8, float(np.mean(preds == labels)))
        order = rng.permutation(120)  # stored in any order: paired by file id
        predictions_file(results, experiment, "r0", [ids[i] for i in order], labels[order], preds[order])
    result = json.loads(cli("compare", "good", "poor", "--synthetic", "--format", "json").output)
    assert result["n_clips"] == 120 and result["metric"] == "acc"
    assert result["difference"] == pytest.approx(np.mean(good == labels) - np.mean(poor == labels))
    assert result["ci95"][0] < result["difference"] < result["ci95"][1] and result["ci95"][0] > 0
    assert result["p_value"] < 1e-4
    assert "McNemar exact p" in cli("compare", "good", "poor", "--synthetic").output

    fabricated(results, "r0", "other", 0.8, 0.5)
    predictions_file(results, "other", "r0", ids[:100], labels[:100], good[:100])
    refused = cli("compare", "good", "other", "--synthetic", expect=1).output
    assert "different clips (120 and 100, 100 shared)" in refused and len(refused.strip().splitlines()) == 1
