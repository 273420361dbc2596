"""auDeep users at home: the tutorial's ESC-10 checkout (`NNN - Class/<fold>-….ogg`) read as
esc10 with its folds, its commands with auDeep's flag names, training from a spectrogram file
(`t-rae train --input`), the confusion matrix, and auDeep's export directory tree."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avbench.audeep.export import export_tree
from avbench.audeep.store import FeatureFile, read_feature_file, write_feature_file
from avbench.config import DataConfig
from avbench.tasks.detection import detect_task
from avbench.tasks.esc10 import ESC10
from avbench.tasks.esc50 import ESC50
from avbench.tasks.esc_legacy import folder_target

# The old ESC-10 repository's class folders, in its numbering.
FOLDERS = {
    "dog": "001 - Dog bark",
    "rain": "002 - Rain",
    "sea_waves": "003 - Sea waves",
    "crying_baby": "004 - Baby cry",
    "clock_tick": "005 - Clock tick",
    "sneezing": "006 - Person sneeze",
    "helicopter": "007 - Helicopter",
    "chainsaw": "008 - Chainsaw",
    "rooster": "009 - Rooster",
    "crackling_fire": "010 - Fire crackling",
}


@pytest.fixture(scope="module")
def legacy(standin, tmp_path_factory) -> Path:
    """The ESC-10 stand-in rewritten in the tutorial's layout: <NNN - Class>/<fold>-<src>-<take>.ogg
    (1 s of each clip, Vorbis), plus two files the layout does not allow."""
    source = standin("esc10")
    root = tmp_path_factory.mktemp("legacy") / "ESC-10"
    with (source / "meta" / "esc50.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            folder = root / FOLDERS[row["category"]]
            folder.mkdir(parents=True, exist_ok=True)
            wave, rate = sf.read(source / "audio" / row["filename"], dtype="float32")
            name = f"{row['fold']}-{row['src_file']}-{row['take']}.ogg"
            sf.write(folder / name, wave[: rate * 1], rate, format="OGG", subtype="VORBIS")
    (root / FOLDERS["dog"] / "notes.txt").write_text("not a clip\n")
    sf.write(root / FOLDERS["dog"] / "take-A.ogg", np.zeros(4410, np.float32), 44100, format="OGG", subtype="VORBIS")
    return root


def test_the_tutorials_checkout_is_esc10_with_its_folds(legacy, standin) -> None:
    assert detect_task(legacy) == ("esc10", "layout")
    assert not ESC50.looks_like(legacy)
    task = ESC10()
    items = task.items(legacy, DataConfig(fold=3))
    assert len(items) == 100 and sorted({item.fold for item in items}) == [1, 2, 3, 4, 5]
    for item in items:
        assert item.split == {3: "test", 4: "val"}.get(item.fold, "train")
    # The same labels as the csv layout gives the same clips.
    current = {
        (i.fold, i.audio.stem.split("-")[1], i.audio.stem.split("-")[2]): i.label
        for i in ESC10().items(standin("esc10"), DataConfig())
    }
    for item in items:
        fold, src, take = item.audio.stem.split("-")
        assert current[(int(fold), src, take)] == item.label
    reasons = {path.name: reason for path, reason in task.skipped}
    assert "not an audio clip" in reasons["notes.txt"] and "fold" in reasons["take-A.ogg"]


def test_old_esc50_folders_map_by_number() -> None:
    assert folder_target(Path("101 - Dog")) == 0 and folder_target(Path("510 - Hand saw")) == 49
    assert folder_target(Path("203 - Crackling fire")) == 12 and folder_target(Path("009 - Rooster")) == 1
    assert folder_target(Path("011 - Something")) is None


def test_the_tutorial_with_audeeps_flag_names(cli, workspace, legacy) -> None:
    out = cli("data", "inspect", str(legacy)).output  # audeep inspect raw --basedir ESC-10
    assert "esc10" in out and "100" in out
    out = cli(
        "features",
        "spectrogram",
        "--basedir",
        str(legacy),
        "--window-width",
        "0.08",
        "--window-overlap",
        "0.04",
        "--mel-spectrum",
        "16",
        "--fixed-length",
        "1",
        "--center-fixed",
        "--clip-below",
        "-60",
        "--output",
        "spec.nc",
    ).output
    assert "100 clips of esc10" in out and "at 44100 Hz" in out  # the files' own rate
    spectrograms = read_feature_file(workspace / "spec.nc")
    assert sorted(set(spectrograms.folds)) == [1, 2, 3, 4, 5] and spectrograms.settings["sample_rate"] == 44100

    # t-rae train --input spec.nc: the autoencoder trains on the file, no dataset is read.
    cli(
        "run",
        "audeep-esc10",
        "--preset",
        "tiny",
        "--no-wandb",
        "--set",
        "data.spectrograms=spec.nc",
        "--set",
        "data.root=/nowhere",
        "--set",
        "train.lr=1e-3",
        "--set",
        "model_args.keep_prob=0.8",
        "--set",
        "evaluation.num_units=16",
        "--set",
        "evaluation.keep_prob=0.6",
    )
    (run,) = (workspace / "results" / "runs" / "audeep-esc10").iterdir()
    record = json.loads((run / "record.json").read_text())
    assert record["status"] == "completed", record.get("error")
    assert record["data_sizes"]["clips"] == 100 and record["cv"]["folds"] == 5 and record["data_kind"] == "real"
    assert "n_mels: 16" in (run / "config.yaml").read_text()  # the file's settings, not the preset's 8 kHz

    cli("features", "generate", "--model-dir", str(run), "--input", "spec.nc", "--output", "rep.nc")
    out = cli(
        "features",
        "evaluate",
        "--input",
        "rep.nc",
        "--cross-validate",
        "--shuffle",
        "--num-epochs",
        "20",
        "--learning-rate",
        "0.001",
        "--keep-prob",
        "0.6",
        "--num-layers",
        "2",
        "--num-units",
        "16",
    ).output
    assert "confusion matrix" in out and "true class" in out
    matrix_rows = [line for line in out.splitlines() if line.strip("│ ").split(" ")[0] in ESC10.classes]
    counts = [int(n) for line in matrix_rows for n in line.replace("│", " ").split()[1:]]
    assert len(matrix_rows) == 10 and sum(counts) == 100  # every clip once, in its test fold

    out = cli("features", "export", "--input", "rep.nc", "--output", "csv", "--format", "CSV").output
    files = sorted((workspace / "csv").glob("fold_*/rep.csv"))
    assert [f.parent.name for f in files] == [f"fold_{k}" for k in range(1, 6)] and "wrote 5 file(s)" in out
    for k, path in enumerate(files, start=1):
        with path.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 20 and {row["fold"] for row in rows} == {str(k)}

    out = cli(
        "run",
        "spectrogram-cnn-esc10",
        "--preset",
        "tiny",
        "--set",
        "data.spectrograms=spec.nc",
        "--set",
        "train.lr=1e-3",
        "--set",
        "train.batch_size=8",
        "--set",
        "train.optimizer=adam",
        expect=1,
    ).output
    assert "data.spectrograms feeds auDeep's autoencoder" in out


def split_only_file() -> FeatureFile:
    """Features of a task without folds: auDeep's partitions instead."""
    splits = ["train"] * 4 + ["val"] * 2 + ["test"] * 2
    return FeatureFile(
        kind="representation",
        task="audiofolder",
        features=np.arange(16, dtype=np.float32).reshape(8, 2),
        feature_dims=("generated",),
        filenames=[f"c{i}.wav" for i in range(8)],
        labels=np.array([0, 1] * 4),
        class_names=("a", "b"),
        folds=np.zeros(8, np.int32),
        splits=splits,
    )


def test_export_tree_of_a_task_without_folds_and_cross_validate_needs_folds(cli, workspace) -> None:
    data = split_only_file()
    written = export_tree(data, workspace / "out", "feats", "arff")
    assert sorted(p.relative_to(workspace / "out").as_posix() for p in written) == [
        "devel/feats.arff",
        "test/feats.arff",
        "train/feats.arff",
    ]
    assert (workspace / "out" / "devel" / "feats.arff").read_text().count("'c") == 2
    write_feature_file(workspace / "split.nc", data)
    out = cli("features", "evaluate", "--input", "split.nc", "--cross-validate", expect=1).output
    assert "has no cross-validation folds" in out
    out = cli("features", "evaluate", "split.nc", "--input", "split.nc", expect=2).output
    assert "not both" in out
