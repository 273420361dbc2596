"""The CREMA-D Perceiver seed's data and recipe: split CSVs (file_path, emotion), audio in its
own folder, a random temporal window on the train split, the classes in the HF config, and
the seed's hyperparameters as a preset."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avbench.catalog import load_experiment
from avbench.config import DataConfig
from avbench.data.cache import FeatureCache
from avbench.data.dataset import ArrayDataset, prepare_data
from avbench.errors import DatasetError
from avbench.registry import MODELS
from avbench.spec import TaskSpec
from avbench.tasks.cremad import CremaD
from avbench.tasks.esc50 import ESC50

WINDOW = {
    "modalities": ["audio", "video"],
    "audio_feature": "waveform",
    "sample_rate": 8000,
    "clip_seconds": 0.25,
    "num_frames": 2,
    "image_size": 16,
}


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def seed_layout(standin, tmp_path) -> dict:
    """The seed's folders: CREMA-D/VideoFlash, CREMA-D/CSV/{train,val,test}.csv listing .flv names
    and emotions, and the WAVs in a folder of their own (AudioWAV-CREMA)."""
    source = standin("cremad")
    root, audio = tmp_path / "CREMA-D", tmp_path / "AudioWAV-CREMA"
    root.mkdir()
    (root / "VideoFlash").symlink_to(source / "VideoFlash")
    audio.symlink_to(source / "AudioWAV")
    stems = sorted(path.stem for path in (source / "AudioWAV").glob("*.wav"))
    names = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
    # By actor, as a speaker-independent split would be, but not the task's own split.
    actors = sorted({stem[:4] for stem in stems})
    split_of = {actor: ("test" if i < 2 else "val" if i < 4 else "train") for i, actor in enumerate(actors)}
    rows: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for stem in stems:
        rows[split_of[stem[:4]]].append({"file_path": f"{stem}.flv", "emotion": names[stem.split("_")[2]]})
    rows["train"].append({"file_path": "1099_DFA_ANG_XX.flv", "emotion": "anger"})  # no such clip
    rows["train"].append({"file_path": f"{stems[0]}.flv", "emotion": "bored"})  # unknown emotion
    (root / "CSV").mkdir()
    for split, listed in rows.items():
        write_csv(root / "CSV" / f"{split}.csv", listed)
    return {"root": root, "audio": audio, "csv": root / "CSV", "split_of": split_of, "count": len(stems)}


def test_split_csv_folder_and_audio_root_give_the_seeds_split(seed_layout) -> None:
    task = CremaD()
    data = DataConfig(split_csv=str(seed_layout["csv"]), audio_root=str(seed_layout["audio"]))
    items = task.items(seed_layout["root"], data)
    assert len(items) == seed_layout["count"]  # a clip listed twice keeps its first usable listing
    for item in items:
        assert item.split == seed_layout["split_of"][item.speaker]
        assert CremaD.classes[item.label] == item.audio.stem.split("_")[2]
        assert item.audio.parent == seed_layout["audio"] and item.video is not None
    reasons = " | ".join(reason for _, reason in task.skipped)
    assert "train.csv:" in reasons and "missing" in reasons
    assert "unknown emotion 'bored' in train.csv:" in reasons


def test_split_csv_as_one_file_with_a_split_column_or_a_mapping(seed_layout, tmp_path) -> None:
    rows = []
    for split in ("train", "val", "test"):
        with (seed_layout["csv"] / f"{split}.csv").open(encoding="utf-8") as handle:
            rows += [{**row, "split": split} for row in csv.DictReader(handle)]
    write_csv(tmp_path / "all.csv", rows)
    single = CremaD().items(
        seed_layout["root"], DataConfig(split_csv=str(tmp_path / "all.csv"), audio_root=str(seed_layout["audio"]))
    )
    mapping = {split: str(seed_layout["csv"] / f"{split}.csv") for split in ("train", "val", "test")}
    mapped = CremaD().items(seed_layout["root"], DataConfig(split_csv=mapping, audio_root=str(seed_layout["audio"])))
    assert [(i.audio, i.split, i.label) for i in single] == [(i.audio, i.split, i.label) for i in mapped]


def test_split_csv_mistakes_are_one_line_errors(seed_layout, tmp_path) -> None:
    write_csv(tmp_path / "bad.csv", [{"path": "1001_DFA_ANG_XX.flv", "mood": "anger"}])
    audio = str(seed_layout["audio"])
    with pytest.raises(DatasetError, match="has no label column"):
        CremaD().items(seed_layout["root"], DataConfig(split_csv=str(tmp_path / "bad.csv"), audio_root=audio))
    with pytest.raises(DatasetError, match="no .*val.csv"):
        (seed_layout["csv"] / "val.csv").unlink()
        CremaD().items(seed_layout["root"], DataConfig(split_csv=str(seed_layout["csv"]), audio_root=audio))
    with pytest.raises(DatasetError, match="data.audio_root .* is not a folder"):
        CremaD().items(seed_layout["root"], DataConfig(audio_root=str(tmp_path / "nowhere")))
    with pytest.raises(DatasetError, match="split_csv.*does not apply"):
        ESC50().items(tmp_path, DataConfig(split_csv=str(seed_layout["csv"])))  # refused before any read


def prepared(root: Path, cache: Path, **data) -> dict:
    return prepare_data(CremaD(), root, DataConfig(**{**WINDOW, **data}), FeatureCache(cache)).splits


def test_random_window_on_train_only_aligned_and_seeded(standin, tmp_path) -> None:
    root = standin("cremad")
    centred = prepared(root, tmp_path / "cache")
    cropped = prepared(root, tmp_path / "cache", train_crop="random", crop_from_seconds=1.0)
    window = cropped["train"].window
    assert window.positions == 7 and cropped["train"].random_window and not cropped["val"].random_window
    # Evaluation sees the same centred clip as without the crop.
    for index in range(3):
        for modality in ("audio", "video"):
            expected = ArrayDataset(centred["val"])[index][modality]
            assert torch.equal(ArrayDataset(cropped["val"])[index][modality], expected)
    train = ArrayDataset(cropped["train"])
    full_audio = np.asarray(cropped["train"].audio[0], dtype=np.float32)

    def draws(seed: int) -> list[int]:
        torch.manual_seed(seed)
        starts = []
        for _ in range(12):
            example = train[0]
            assert example["audio"].shape == (1, 2000) and example["video"].shape == (2, 3, 16, 16)
            match = [s for s in range(0, 6001, 1000) if np.array_equal(full_audio[s : s + 2000], example["audio"][0])]
            frames = cropped["train"].features["video"][0]
            position = match[0] // 1000
            # The video window starts at the same moment: frame `position` of the cached clip.
            assert torch.equal(example["video"], torch.from_numpy(np.array(frames[position : position + 2])))
            starts.append(position)
        return starts

    first = draws(3)
    assert draws(3) == first and len(set(first)) > 1


def test_the_seeds_classes_are_written_into_the_hf_config() -> None:
    spec = TaskSpec(
        num_classes=6,
        modalities=("audio", "video"),
        sample_rate=16000,
        shapes={"audio": (1, 1600), "video": (2, 3, 16, 16)},
        class_names=CremaD.classes,
    )
    model = MODELS.get("perceiver")(spec, **MODELS.get("perceiver").tiny_args)
    config = model.autoencoder.config
    assert config.id2label == dict(enumerate(CremaD.classes)) and config.label2id["SAD"] == 5
    assert config.num_labels == 6
    batch = {"audio": torch.randn(2, 1, 1600), "video": torch.randn(2, 2, 3, 16, 16)}
    assert model(batch).shape == (2, 6)


def test_seed_preset_is_the_seeds_recipe(workspace) -> None:
    loaded = load_experiment("perceiver-cremad", preset="seed")
    assert loaded.searched == []
    train = loaded.config.train
    assert (train.optimizer, train.lr, train.batch_size, train.epochs, train.patience) == ("adam", 0.01, 2, 10, 3)


def test_run_on_the_seeds_layout_with_a_random_window(cli, seed_layout, workspace) -> None:
    # Five actors are enough to run it: trim the CSVs (two test, two val, one train actor).
    kept = sorted(seed_layout["split_of"])[:5]
    for split in ("train", "val", "test"):
        path = seed_layout["csv"] / f"{split}.csv"
        with path.open(encoding="utf-8") as handle:
            rows = [
                row for row in csv.DictReader(handle) if row["file_path"][:4] in kept or row["file_path"][:4] == "1099"
            ]
        write_csv(path, rows)
    result = cli(
        "run",
        "perceiver-cremad",
        "--preset",
        "tiny",
        "--no-wandb",
        "--set",
        f"data.root={seed_layout['root']}",
        "--set",
        f"data.audio_root={seed_layout['audio']}",
        "--set",
        f"data.split_csv={seed_layout['csv']}",
        "--set",
        "data.train_crop=random",
        "--set",
        "train.lr=1e-3",
        "--set",
        "train.batch_size=8",
        "--set",
        "train.epochs=1",
    )
    assert "completed" in result.output
    record = json.loads(next((workspace / "results" / "runs" / "perceiver-cremad").glob("*/record.json")).read_text())
    assert record["data_sizes"] == {"train": 12, "val": 24, "test": 24}  # 12 clips per actor
    assert any("1099_DFA_ANG_XX" in path for path, _ in record["skipped_files"])
