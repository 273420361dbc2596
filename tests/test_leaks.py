"""Split leak checks (avbench.data.leaks) on the commands layout, whose split folders are explicit:
a recording copied re-encoded into another split and a speaker in two splits are caught by
`avbench data inspect` (and listed under `leaks` in --json); `avbench run` records the checks,
warns, and stops with --strict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from avbench.data.leaks import find_leaks
from avbench.tasks.detection import inspect_dataset
from tests.conftest import TINY_VALUES

RATE = 16000


def _write_commands(root: Path, speakers: dict[str, list[str]]) -> dict[tuple[str, str, str], Path]:
    """ROOT/<split>/<class>/<speaker>_<take>.wav: each split's speakers say both words, every
    file its own noise so no two recordings match by chance."""
    written = {}
    for split, names in speakers.items():
        for word in ("no", "yes"):
            (root / split / word).mkdir(parents=True, exist_ok=True)
            for speaker in names:
                path = root / split / word / f"{speaker}_1.wav"
                seed = [len(written), *map(ord, path.name)]
                wave = np.random.default_rng(seed).standard_normal(RATE) * 0.1
                sf.write(path, wave.astype(np.float32), RATE, subtype="PCM_16")
                written[(split, word, speaker)] = path
    return written


def test_a_reencoded_copy_in_another_split_is_caught(tmp_path: Path, cli) -> None:
    root = tmp_path / "copied"
    files = _write_commands(root, {"train": ["s001", "s002"], "val": ["s003"], "test": ["s004"]})
    wave, rate = sf.read(files[("train", "yes", "s001")])
    sf.write(root / "test" / "yes" / "s009_1.flac", wave * 0.5, rate, subtype="PCM_24")  # FLAC, 24 bit, −6 dB
    result = cli("data", "inspect", str(root), "--task", "commands", "--json")
    report = json.loads(result.output)
    assert report["leak_checks"] == ["same_file", "speaker", "content"]
    assert report["leaks"] == [
        {
            "check": "content",
            "subject": "test/yes/s009_1.flac",
            "paths": {"train": ["train/yes/s001_1.wav"], "test": ["test/yes/s009_1.flac"]},
            "files": 2,
        }
    ]
    shown = cli("data", "inspect", str(root), "--task", "commands").output
    assert "1 split leak(s)" in shown and "recording test/yes/s009_1.flac is in train and test" in shown


def test_a_speaker_in_two_splits_is_caught_and_clean_data_is_not(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    _write_commands(clean, {"train": ["s001", "s002"], "val": ["s003"], "test": ["s004"]})
    report = inspect_dataset(clean, "commands", _regex())
    assert (report.leak_checks, report.leaks) == (["same_file", "speaker", "content"], [])

    leaky = tmp_path / "leaky"
    _write_commands(leaky, {"train": ["s001", "s002"], "val": ["s003"], "test": ["s004", "s002"]})
    report = inspect_dataset(leaky, "commands", _regex())
    assert [(leak["check"], leak["subject"], leak["files"]) for leak in report.leaks] == [("speaker", "s002", 4)]
    assert report.leaks[0]["paths"] == {
        "train": ["train/no/s002_1.wav", "train/yes/s002_1.wav"],
        "test": ["test/no/s002_1.wav", "test/yes/s002_1.wav"],
    }


def test_a_file_listed_in_two_splits_is_one_finding(tmp_path: Path) -> None:
    from avbench.spec import Item

    path = tmp_path / "a.wav"
    sf.write(path, np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.1, RATE)
    items = [Item(path, 0, "unknown", "train"), Item(path, 0, "unknown", "test")]
    report = find_leaks(items, tmp_path)
    assert [(leak.check, leak.paths) for leak in report.leaks] == [
        ("same_file", {"train": ["a.wav"], "test": ["a.wav"]})
    ]


def _regex():
    from avbench.config import DataConfig

    return DataConfig(speaker_regex=r"^(s\d{3})_")


def test_run_records_the_checks_warns_and_strict_stops(tmp_path: Path, cli, workspace) -> None:
    from avbench.results.records import read_records

    root = tmp_path / "leaky"
    _write_commands(root, {"train": ["s001", "s002", "s005"], "val": ["s003"], "test": ["s004", "s002"]})
    args = ("run", "mel-stats-mlp-commands", "--preset", "tiny", *TINY_VALUES, "--set", f"data.root={root}")
    args += (
        "--set",
        r"data.speaker_regex=^(s\d{3})_",
        "--set",
        "data.modalities=[audio]",
        "--set",
        "model_args.dropout=0.1",
        "--set",
        "train.weight_decay=0",  # searched by the tuned mel-stats-mlp-commands file
        "--no-wandb",
    )
    warned = cli(*args)
    assert "warning: split leak: speaker s002 is in train and test" in warned.output
    (record,) = read_records(workspace / "results")[0]
    assert record.leak_checks == ["same_file", "speaker", "content"]
    assert [(leak["check"], leak["subject"]) for leak in record.leaks] == [("speaker", "s002")]
    stopped = cli(*args, "--strict", expect=1)
    assert "split leak: speaker s002 is in train and test" in stopped.output
