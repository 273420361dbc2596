"""ESC-50 and ESC-10: the metadata CSV is the truth for folds and classes, the fold protocol,
the stand-in's files, every problem reported, and a class signal that generalises to
held-out folds."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avbench.config import DataConfig
from avbench.errors import DatasetError
from avbench.registry import TASKS
from avbench.tasks.esc10 import ESC10
from avbench.tasks.esc50 import CATEGORIES, COLUMNS, ESC10_TARGETS, ESC50
from tests.learnability import clip_features, grouped_cv_accuracy, logistic_accuracy, shuffled

TASK_CLASSES = {"esc50": ESC50, "esc10": ESC10}


def read_meta(root: Path) -> dict[str, dict[str, str]]:
    with (root / "meta" / "esc50.csv").open(newline="", encoding="utf-8") as handle:
        return {row["filename"]: row for row in csv.DictReader(handle)}


def test_registered_with_five_folds() -> None:
    assert TASKS.get("esc50") is ESC50 and TASKS.get("esc10") is ESC10
    assert ESC50.fold_count == ESC10.fold_count == 5


@pytest.mark.parametrize("name", ["esc50", "esc10"])
def test_items_parse_every_listed_file(standin, name: str) -> None:
    root = standin(name)
    task = TASK_CLASSES[name]()
    items = task.items(root, DataConfig())
    meta = read_meta(root)
    assert task.skipped == []
    on_disk = sorted(path.name for path in (root / "audio").iterdir())
    assert sorted(item.audio.name for item in items) == sorted(meta) == on_disk
    per_fold = ESC50.sizes["tiny"] if name == "esc50" else ESC10.sizes["tiny"]
    for item in items:
        row = meta[item.audio.name]
        assert task.classes[item.label] == row["category"]
        assert item.fold == int(row["fold"]) and item.speaker == row["src_file"]
    for label in range(len(task.classes)):
        for fold in range(1, 6):
            assert sum(1 for i in items if i.label == label and i.fold == fold) == per_fold


@pytest.mark.parametrize("test_fold", [1, 2, 3, 4, 5])
def test_fold_protocol_follows_the_metadata(standin, test_fold: int) -> None:
    root = standin("esc10")
    meta = read_meta(root)
    items = ESC10().items(root, DataConfig(fold=test_fold))
    val_fold = test_fold % 5 + 1
    for item in items:
        fold = int(meta[item.audio.name]["fold"])
        expected = "test" if fold == test_fold else "val" if fold == val_fold else "train"
        assert item.split == expected
    folds = {split: {i.fold for i in items if i.split == split} for split in ("train", "val", "test")}
    assert folds["test"] == {test_fold} and folds["val"] == {val_fold}
    assert folds["train"] == set(range(1, 6)) - {test_fold, val_fold}
    # Clips cut from one source recording share a fold, so never a split.
    sources = {split: {i.speaker for i in items if i.split == split} for split in folds}
    assert not sources["train"] & sources["test"] and not sources["val"] & sources["test"]


def test_esc10_is_the_ten_esc10_classes_of_esc50(standin) -> None:
    assert ESC10.classes == (
        "dog", "rooster", "rain", "sea_waves", "crackling_fire",
        "crying_baby", "sneezing", "clock_tick", "helicopter", "chainsaw",
    )  # fmt: skip
    assert tuple(CATEGORIES[t] for t in ESC10_TARGETS) == ESC10.classes
    root = standin("esc50")
    meta = read_meta(root)
    items = ESC10().items(root, DataConfig())
    assert sorted(i.audio.name for i in items) == sorted(name for name, row in meta.items() if row["esc10"] == "True")
    assert {i.label for i in items} == set(range(10))
    for item in items:
        assert ESC10_TARGETS[item.label] == int(meta[item.audio.name]["target"])


@pytest.mark.parametrize("name", ["esc50", "esc10"])
def test_written_files_have_the_real_formats(standin, name: str) -> None:
    root = standin(name)
    wavs = sorted((root / "audio").glob("*.wav"))
    for wav in wavs[:: max(len(wavs) // 12, 1)]:
        info = sf.info(str(wav))
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (44100, 1, "PCM_16", 220500)
        fold, source, take, target = wav.stem.split("-")
        assert fold in "12345" and source.isdigit() and take in "AB" and int(target) < 50
    with (root / "meta" / "esc50.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == COLUMNS and rows[1:] == sorted(rows[1:])
    assert all(row[4] == str(int(row[2]) in ESC10_TARGETS) for row in rows[1:])
    marker = json.loads((root / ".avbench-synthetic").read_text())
    files = marker.pop("files")  # the manifest of what the stand-in wrote (tasks/standin.guard_output)
    assert marker == {"task": name, "size": "tiny", "seed": 0, "count": len(wavs)}
    assert sum(f.startswith("audio/") for f in files) == len(wavs) and "meta/esc50.csv" in files


def test_unknown_fold_is_one_clear_error(standin) -> None:
    with pytest.raises(DatasetError, match=r"data.fold=7 but the dataset has folds 1–5"):
        ESC10().items(standin("esc10"), DataConfig(fold=7))
    with pytest.raises(DatasetError, match="does not apply"):
        ESC10().items(standin("esc10"), DataConfig(speaker_regex="(x)"))


def test_missing_layout_is_one_line_error(tmp_path: Path) -> None:
    for root in (tmp_path / "absent", tmp_path):
        with pytest.raises(DatasetError) as caught:
            ESC50().items(root, DataConfig())
        message = str(caught.value)
        assert "meta/esc50.csv" in message and "--synthetic" in message and "\n" not in message
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "esc50.csv").write_text("filename,fold\n")
    (tmp_path / "audio").mkdir()
    with pytest.raises(DatasetError, match="lacks column"):
        ESC50().items(tmp_path, DataConfig())


def test_problems_are_skipped_and_reported(standin, tmp_path: Path) -> None:
    source = standin("esc10")
    root = tmp_path / "ESC-50"
    shutil.copytree(source, root)
    (root / ".avbench-synthetic").unlink()
    rows = list(read_meta(root).values())
    missing, empty, renamed, miscategorised = (row["filename"] for row in rows[:4])
    (root / "audio" / missing).unlink()
    (root / "audio" / empty).write_bytes(b"")
    (root / "audio" / renamed).rename(root / "audio" / "unlisted.wav")
    rows[3]["category"] = "cat"
    rows[4]["fold"] = "six"
    rows.append(dict(rows[5]))  # listed twice
    with (root / "meta" / "esc50.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    task = ESC10()
    items = task.items(root, DataConfig())
    reasons = {(path.name, reason.split(" (")[0].split(":")[0]) for path, reason in task.skipped}
    assert (missing, "missing") in reasons and (empty, "empty file") in reasons
    assert (renamed, "missing") in reasons and ("unlisted.wav", "not listed in meta/esc50.csv") in reasons
    assert (miscategorised, "category 'cat' does not match target " + rows[3]["target"]) in reasons
    assert ("esc50.csv", "line 6") in reasons and (rows[5]["filename"], "listed twice in meta/esc50.csv") in reasons
    assert len(items) == len(rows) - 1 - 5  # the duplicate row and five unusable rows


def test_class_signal_generalises_to_held_out_folds(standin) -> None:
    """ESC-10: five-fold cross-validation over the predefined folds; ESC-50 (50 classes, one
    clip per class and fold in the tiny stand-in): train on three folds, test on fold 1."""
    items = ESC10().items(standin("esc10"), DataConfig())
    x = np.stack([clip_features(item.audio) for item in items])
    y = np.array([item.label for item in items])
    folds = np.array([item.fold for item in items])
    assert grouped_cv_accuracy(x, y, folds, 10) > 0.8
    assert grouped_cv_accuracy(x, shuffled(y), folds, 10) < 0.3

    items = ESC50().items(standin("esc50"), DataConfig(fold=1))
    x = np.stack([clip_features(item.audio) for item in items])
    y = np.array([item.label for item in items])
    split = np.array([item.split for item in items])
    assert logistic_accuracy(x, y, split == "train", split == "test", 50) > 0.4
    assert logistic_accuracy(x, shuffled(y), split == "train", split == "test", 50) < 0.12
