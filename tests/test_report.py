"""`avbench report`: a tiny sweep, a second experiment and a shuffled-label control on the
synthetic CREMA-D, then the page in a real headless Chromium (no console error, a screenshot that is not blank), and the
page's parts read back with an HTML parser."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from avbench.report import ExperimentSection, render_page
from tests.conftest import TINY, TINY_VALUES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Parts(HTMLParser):
    """The tags, ids, classes and <title> texts of a page; external references are collected."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.titles: list[str] = []
        self.external: list[str] = []
        self.classes: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        values = dict(attrs)
        self.classes.append(values.get("class") or "")
        for key in ("src", "href"):
            if values.get(key):
                self.external.append(values[key])
        self._in_title = tag == "title"

    def handle_data(self, data):
        if self._in_title:
            self.titles.append(data)
            self._in_title = False


@pytest.fixture(scope="module")
def report_page(tmp_path_factory, synthetic_data) -> Path:
    """results/ of a 2-trial tiny sweep, a run of a second experiment on the same test clips and one
    control run, and the page written from it."""
    from click.testing import CliRunner

    from avbench.cli import cli

    root = tmp_path_factory.mktemp("report")
    env = {"AVBENCH_RESULTS": str(root / "results"), "AVBENCH_DATA": str(synthetic_data), "WANDB_MODE": "offline"}
    runner = CliRunner(env=env)
    sweep = ["sweep", "mel-stats-mlp-cremad", *TINY, "--trials", "2", "--no-wandb", "--set", "train.optimizer=adam"]
    result = runner.invoke(cli, sweep)
    assert result.exit_code == 0, result.output
    control = ["run", "mel-stats-mlp-cremad", *TINY, *TINY_VALUES, "--set", "model_args.dropout=0.1"]
    control += ["--set", "train.weight_decay=0.0"]
    result = runner.invoke(cli, [*control, "--set", "data.shuffle_train_labels=true", "--no-wandb"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["run", "spectrogram-cnn-cremad", *TINY, *TINY_VALUES, "--no-wandb"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["report", "--out", str(root / "page")])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"report: {root / 'page' / 'index.html'}"
    return root / "page" / "index.html"


def test_the_page_holds_the_board_the_study_the_confusion_and_provenance(report_page: Path) -> None:
    page = report_page.read_text(encoding="utf-8")
    parts = Parts()
    parts.feed(page)
    assert parts.external == []  # nothing is fetched when the page is viewed
    assert "mel-stats-mlp-cremad: optimisation history" in parts.titles
    assert "mel-stats-mlp-cremad: test confusion matrix (rows: true class)" in parts.titles
    assert "cremad: test acc" in parts.titles
    assert parts.classes.count("real") == 2 and parts.classes.count("control") == 1  # the control beside the real row
    assert "Provenance" in page and "torch" in page and "synthetic" in page


class Cells(HTMLParser):
    """The text of each <td> of the rows of one table class, row by row."""

    def __init__(self, table: str) -> None:
        super().__init__()
        self.table, self.inside, self.rows = table, False, []

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.inside = dict(attrs).get("class") == self.table
        elif tag == "tr" and self.inside:
            self.rows.append([])
        elif tag == "td" and self.inside:
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        self.inside = self.inside and tag != "table"

    def handle_data(self, data):
        if self.inside and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


def test_the_page_compares_the_leader_with_the_other_experiment_as_compare_does(report_page: Path) -> None:
    from avbench.results.compare import compare
    from avbench.results.leaderboard import leaderboard_rows

    results = report_page.parent.parent / "results"
    cells = Cells("comparisons")
    cells.feed(report_page.read_text(encoding="utf-8"))
    (header, row) = cells.rows  # one board with two real experiments; the control is not paired
    assert header == []  # the header row holds <th> only
    leader, other = (r["experiment"] for r in leaderboard_rows(results) if not r["is_control"])
    expected = compare(results, leader, other, metric="acc", data="synthetic")
    low, high = expected.ci95
    assert row[:5] == ["cremad", "synthetic", leader, other, "acc"]
    assert row[5:] == [
        f"{expected.difference:+.4f}",
        f"[{low:+.4f}, {high:+.4f}]",
        f"{expected.p_value:.4g}",
        str(expected.n_clips),
        f"{expected.a.runs} / {expected.b.runs}",
    ]


def test_a_pair_on_different_test_clips_says_why_it_is_not_paired() -> None:
    from avbench.results.compare import BoardPair

    row = {"experiment": "x", "task": "t", "model": "m", "data": "real", "metric": "acc", "run_id": "r"}
    refused = BoardPair("t", "real", "x", "y", None, "x and y were tested on different clips (4 and 6, 4 shared)")
    page = render_page([row], [ExperimentSection("x")], [refused])
    cells = Cells("comparisons")
    cells.feed(page)
    assert cells.rows[1] == [
        "t",
        "real",
        "x",
        "y",
        "not paired: x and y were tested on different clips (4 and 6, 4 shared)",
    ]
    assert "no board has two experiments" in render_page([row], [ExperimentSection("x")])


def test_error_bars_are_drawn_where_rows_carry_ci95() -> None:
    row = {"experiment": "x", "task": "t", "model": "m", "data": "real", "metric": "acc", "run_id": "r"}
    rows = [{**row, "test/acc": 0.7, "test/acc_ci95": [0.65, 0.75]}, {**row, "experiment": "y", "test/acc": 0.6}]
    page = render_page(rows, [ExperimentSection("x"), ExperimentSection("y")])
    assert page.count('class="ci"') == 1 and "[0.6500, 0.7500]" in page


def test_no_results_is_one_line(cli) -> None:
    result = cli("report", expect=1)
    assert result.output.startswith("Error: no completed run under") and result.output.count("\n") == 1


def test_the_page_loads_in_chromium_without_errors_and_shows_the_board(report_page: Path, tmp_path: Path) -> None:
    from PIL import Image

    if CHROMIUM is None:  # as the PostgreSQL tests: skipped on a bare machine, a failure in CI
        assert os.environ.get("CI") != "true", "CI must install chromium (.ci/run does)"
        pytest.skip("needs Debian's chromium (.ci/run installs it)")

    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"]
    flags += [f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900"]
    url = report_page.resolve().as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<svg" in dom.stdout and "mel-stats-mlp-cremad" in dom.stdout
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    shot = tmp_path / "page.png"
    taken = subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (900, 1200)
    blue = np.all(np.abs(pixels.astype(int) - (0x3B, 0x6F, 0xB6)) < 8, axis=-1)  # the board's bars
    assert blue.sum() > 200 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20


def test_boards_pair_only_real_rows_and_a_cross_validated_one_says_why_not(tmp_path: Path) -> None:
    from avbench.results.compare import board_comparisons
    from avbench.results.leaderboard import leaderboard_rows
    from avbench.results.records import RunRecord, write_record

    def record(run_id: str, model: str, score: float, data_kind: str = "synthetic", cv=None) -> RunRecord:
        scores = {"acc": score, "uar": score, "macro_f1": score}
        return RunRecord(
            run_id=run_id,
            experiment=f"{model}-t",
            task="t",
            model=model,
            status="completed",
            data_kind=data_kind,
            val=scores,
            test=scores,
            cv=cv,
        )

    for fold in (1, 2):
        write_record(tmp_path, record(f"cv-fold{fold}", "cv", 0.9, cv={"group": "cv", "fold": fold, "folds": 2}))
    write_record(tmp_path, record("plain", "plain", 0.5))
    write_record(tmp_path, record("shuffled", "plain", 0.2, data_kind="synthetic, shuffled train labels"))
    (pair,) = board_comparisons(tmp_path, leaderboard_rows(tmp_path))
    assert (pair.leader, pair.other, pair.comparison) == ("cv-t", "plain-t", None)
    assert pair.refused == "cv-t has only cross-validation folds, each testing other clips: nothing to pair"
