"""`avbench data inspect`: the library function's report (counts, headers, every problem),
layout detection, and the CLI on every task's stand-in written by `avbench data synth`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avbench.config import DataConfig
from avbench.errors import DatasetError
from avbench.registry import TASKS
from avbench.tasks.detection import detect_task, inspect_dataset
from avbench.tasks.standin import MARKER
from tests.conftest import REPO, run_avbench

SPLITS = ("train", "val", "test")
# What each stand-in's headers say: sample rate, container/codecs, video.
FORMATS = {
    "annotations": (16000, {"wav PCM_16"}, set()),
    "audiofolder": (16000, {"wav PCM_16"}, set()),
    "commands": (16000, {"mp4 h264+aac"}, {"88×88 @ 25 fps"}),
    "cremad": (16000, {"wav PCM_16", "flv flv1+mp3"}, {"64×64 @ 15 fps"}),
    "esc10": (44100, {"wav PCM_16"}, set()),
    "esc50": (44100, {"wav PCM_16"}, set()),
    "ravdess": (48000, {"wav PCM_16", "mp4 h264+aac"}, {"128×72 @ 30 fps"}),
}


def test_every_task_has_a_stand_in_format_listed() -> None:
    assert sorted(FORMATS) == TASKS.names()


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_synth_then_inspect_through_the_cli(name: str, standin, cli) -> None:
    root = standin(name)  # written by `avbench data synth NAME --out ROOT --size tiny`
    task = TASKS.get(name)()
    items = task.items(root, DataConfig())
    expected = {split: sum(1 for i in items if i.split == split) for split in SPLITS}

    report = json.loads(cli("data", "inspect", str(root), "--task", name, "--json").output)
    assert (report["task"], report["detected_by"], report["synthetic"]) == (name, "--task", True)
    assert report["classes"] == list(task.classes) and report["files"] == len(items)
    assert {split: summary["files"] for split, summary in report["splits"].items()} == expected
    for label, class_name in enumerate(task.classes):
        assert report["counts"][class_name] == {
            s: sum(1 for i in items if i.label == label and i.split == s) for s in SPLITS
        }
    rate, formats, video = FORMATS[name]
    assert report["sample_rates"] == {str(rate): len(items)} and report["channels"] == {"1": len(items)}
    assert set(report["formats"]) == formats and set(report["video"]) == video
    assert report["problems"] == []
    assert report["leaks"] == [], report["leaks"]  # the stand-ins' splits are clean: no false alarms
    assert 0 < report["durations"]["min"] <= report["durations"]["mean"] <= report["durations"]["max"]
    assert (report["folds"] is not None) == (task.fold_count is not None)

    table = cli("data", "inspect", str(root)).output  # task from the marker
    assert f"{root}: {name} synthetic stand-in (task from marker)" in table
    for class_name in task.classes:
        assert class_name in table
    for split, count in expected.items():
        assert re.search(rf"│ {split}\s+│ {count}\s+│", table), table
    assert "no problems found" in table


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_layout_is_detected_without_the_marker(name: str, standin, tmp_path: Path) -> None:
    """Detection reads names only, so a skeleton (same tree, empty files, real CSV) suffices."""
    source = standin(name)
    for path in source.rglob("*"):
        target = tmp_path / path.relative_to(source)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.name != MARKER:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target) if path.suffix == ".csv" else target.touch()
    assert detect_task(tmp_path) == (name, "layout")


def test_an_unknown_layout_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no dataset here")
    with pytest.raises(
        DatasetError, match=r"cannot tell which dataset .* pass --task \(one of: annotations, audiofolder,"
    ):
        detect_task(tmp_path)


def test_every_problem_is_reported_with_its_path(standin, tmp_path: Path, monkeypatch) -> None:
    source = standin("ravdess")
    for path in sorted(source.glob("Actor_0[12]/*")):
        (tmp_path / path.parent.name).mkdir(exist_ok=True)
        shutil.copy(path, tmp_path / path.parent.name / path.name)
    actor = tmp_path / "Actor_01"
    wavs = sorted(actor.glob("03-*.wav"))
    wavs[0].write_bytes(os.urandom(4000))  # corrupt
    sf.write(wavs[1], np.zeros(0, np.float32), 48000)  # a header, no samples
    silent = wavs[2].with_name("01" + wavs[2].stem[2:] + ".mp4")
    wavs[2].unlink()
    shutil.copy(silent.with_name("02" + silent.name[2:]), silent)  # audio from an MP4 without sound
    truncated = wavs[3].with_name("01" + wavs[3].stem[2:] + ".mp4")
    truncated.write_bytes(truncated.read_bytes()[:600])
    shutil.copy(wavs[4], actor / "03-01-01-02-01-01-01.wav")  # neutral cannot be strong
    (tmp_path / "Actor_02" / "extra").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if str(path).endswith("extra"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = inspect_dataset(tmp_path)
    assert (report.task, report.detected_by, report.synthetic) == ("ravdess", "layout", False)
    problems = dict(report.problems)
    assert problems.pop(f"Actor_01/{wavs[0].name}").startswith("corrupt or unreadable")
    assert problems.pop(f"Actor_01/{wavs[1].name}") == "empty file"
    assert problems.pop(f"Actor_01/{silent.name}") == "no audio stream"
    assert problems.pop(f"Actor_01/{truncated.name}").startswith("corrupt or unreadable")
    assert problems.pop("Actor_01/03-01-01-02-01-01-01.wav") == "neutral has no strong intensity"
    assert problems.pop("Actor_02/extra") == "unreadable folder: Permission denied"
    assert problems == {}
    # Each clip is still listed: a clip whose WAV is empty or missing takes its audio from the MP4.
    assert report.files == 2 * 8


def test_missing_files_listed_in_the_esc_csv_are_problems(standin, tmp_path: Path) -> None:
    source = standin("esc10")
    (tmp_path / "audio").mkdir()
    (tmp_path / "meta").mkdir()
    lines = (source / "meta" / "esc50.csv").read_text().splitlines()[:4]
    (tmp_path / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    for line in lines[1:3]:
        name = line.split(",")[0]
        shutil.copy(source / "audio" / name, tmp_path / "audio" / name)
    report = inspect_dataset(tmp_path, "esc10")
    assert report.files == 2 and report.problems == [
        (f"audio/{lines[3].split(',')[0]}", "missing (listed in meta/esc50.csv)")
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["data", "inspect", "nowhere"], "nowhere is not a directory"),
        (["data", "inspect", ".", "--task", "esc10", "--fold", "7"], "data.fold=7 but the dataset has folds 1–5"),
        (["data", "inspect", ".", "--task", "esc5"], "unknown task 'esc5' (did you mean"),
    ],
)
def test_cli_errors_are_one_line(args: list[str], expected: str, tmp_path: Path) -> None:
    proc = run_avbench(*args, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], proc.stderr


def test_inspect_does_not_import_torch(standin) -> None:
    """Tasks never import torch, so looking at a dataset starts as fast as `avbench --help`."""
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom avbench.cli import cli\n"
        f"r = CliRunner().invoke(cli, ['data', 'inspect', {str(standin('audiofolder'))!r}])\n"
        "assert r.exit_code == 0, r.output\nprint('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"
