"""commands (OpenAV layout): split folders, class folders with non-ASCII names, an optional
speaker level, MP4 recordings whose audio is read from the container, every problem
reported, and a class signal that generalises to unseen speakers."""

from __future__ import annotations

import shutil
import unicodedata
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from avbench.config import DataConfig
from avbench.errors import DatasetError
from avbench.registry import TASKS
from avbench.tasks.commands import SPEAKER_REGEX, Commands
from tests.learnability import clip_features, logistic_accuracy, shuffled

SPLITS = ("train", "val", "test")


def test_registered() -> None:
    assert TASKS.get("commands") is Commands
    assert Commands.modalities == ("audio", "video")


def test_items_follow_the_split_and_class_folders(standin) -> None:
    root = standin("commands")
    task = Commands()
    items = task.items(root, DataConfig())
    files = sorted(root.glob("*/*/*.mp4"))
    assert task.skipped == [] and sorted(item.audio for item in items) == files
    assert task.classes == Commands.classes == tuple(sorted(p.name for p in (root / "train").iterdir()))
    speakers, takes = Commands.sizes["tiny"]
    assert len(items) == speakers * takes * len(task.classes)
    for item in items:
        split, name = item.audio.parts[-3:-1]
        assert item.split == split and task.classes[item.label] == name
        assert item.video == item.audio and item.speaker == "unknown"
    assert {split: sum(1 for i in items if i.split == split) for split in SPLITS} == {
        split: len(list((root / split).glob("*/*.mp4"))) for split in SPLITS
    }


def test_non_ascii_class_names_round_trip(standin, tmp_path: Path) -> None:
    """`1_Левая` stays `1_Левая`, even from a file system that stores names decomposed (NFD)."""
    source = standin("commands")
    assert "1_Левая" in Commands().classes
    for split in SPLITS:
        for folder in (source / split).iterdir():
            decomposed = unicodedata.normalize("NFD", folder.name)
            shutil.copytree(folder, tmp_path / split / decomposed)
    assert any(unicodedata.normalize("NFD", "3_Вперёд") == p.name for p in (tmp_path / "train").iterdir())
    task = Commands()
    items = task.items(tmp_path, DataConfig())
    assert task.classes == Commands.classes and len(items) == len(Commands().items(source, DataConfig()))


def test_speaker_level_and_speaker_regex(standin, tmp_path: Path) -> None:
    source = standin("commands")
    for path in source.glob("*/*/*.mp4"):
        split, name = path.parts[-3:-1]
        target = tmp_path / split / path.stem.split("_")[0] / name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.name)
    task = Commands()
    nested = task.items(tmp_path, DataConfig())
    assert task.skipped == [] and task.classes == Commands.classes
    assert all(item.speaker == item.audio.parent.parent.name for item in nested)
    by_regex = Commands().items(source, DataConfig(speaker_regex=SPEAKER_REGEX))
    key = {(i.split, i.audio.parent.name, i.audio.name): (i.label, i.speaker) for i in by_regex}
    assert key == {(i.split, i.audio.parent.name, i.audio.name): (i.label, i.speaker) for i in nested}
    speakers = {split: {i.speaker for i in by_regex if i.split == split} for split in SPLITS}
    assert all(speakers.values()) and not speakers["train"] & (speakers["val"] | speakers["test"])


def test_a_wav_beside_the_mp4_is_its_audio_and_problems_are_reported(standin, tmp_path: Path) -> None:
    source = standin("commands")
    clip = sorted(source.glob("train/1_*/*.mp4"))[0]
    for split in SPLITS:
        (tmp_path / split / "10_Десять").mkdir(parents=True)
        (tmp_path / split / "2_Два").mkdir(parents=True)
        shutil.copy(clip, tmp_path / split / "10_Десять" / clip.name)
        shutil.copy(clip, tmp_path / split / "2_Два" / clip.name)
    pair = tmp_path / "train" / "2_Два" / clip.name
    sf.write(pair.with_suffix(".wav"), np.zeros(1600, np.float32), 16000)
    (tmp_path / "train" / "2_Два" / "notes.txt").write_text("take 2 was noisy")
    (tmp_path / "train" / "2_Два" / "s999_01.mp4").write_bytes(b"")
    (tmp_path / "train" / "9_Пусто").mkdir()
    shutil.copy(clip, tmp_path / "val" / "stray.mp4")
    task = Commands()
    items = task.items(tmp_path, DataConfig())
    assert task.classes == ("2_Два", "10_Десять")  # natural order, not "10" < "2"
    paired = [item for item in items if item.video == pair]
    assert len(paired) == 1 and paired[0].audio == pair.with_suffix(".wav")
    assert len(items) == 6
    assert {(path.name, reason) for path, reason in task.skipped} == {
        ("notes.txt", "not an audio or video file"),
        ("s999_01.mp4", "empty file"),
        ("9_Пусто", "class folder holds no recording"),
        ("stray.mp4", "file outside a class folder"),
    }


def test_bad_speaker_regex_is_one_line_error(standin) -> None:
    with pytest.raises(DatasetError, match="exactly one"):
        Commands().items(standin("commands"), DataConfig(speaker_regex="s(\\d)_(\\d)"))
    with pytest.raises(DatasetError, match="not a valid regex"):
        Commands().items(standin("commands"), DataConfig(speaker_regex="s(\\d"))


def test_missing_layout_is_one_line_error(tmp_path: Path) -> None:
    for root in (tmp_path / "absent", tmp_path):
        with pytest.raises(DatasetError) as caught:
            Commands().items(root, DataConfig())
        message = str(caught.value)
        assert "{train,val,test}" in message and "--synthetic" in message and "\n" not in message


def test_written_files_are_lip_videos_with_sound(standin) -> None:
    clip = sorted(standin("commands").glob("train/*/*.mp4"))[0]
    with av.open(str(clip)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
        assert (video.codec_context.width, video.codec_context.height, video.average_rate) == (88, 88, 25)
        assert (audio.codec_context.sample_rate, audio.codec_context.layout.nb_channels) == (16000, 1)
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video)]
    with av.open(str(clip)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert 0.9 <= samples / 16000 <= 1.5 and abs(len(frames) / 25 - samples / 16000) < 0.1
    # The mouth opens and closes with the speech: the crop changes over time.
    assert np.abs(frames[0].astype(int) - frames[len(frames) // 2]).max() > 50


def test_class_signal_generalises_to_unseen_speakers(standin) -> None:
    items = Commands().items(standin("commands"), DataConfig())
    x = np.stack([clip_features(item.audio) for item in items])
    y = np.array([item.label for item in items])
    split = np.array([item.split for item in items])
    train, test = split == "train", split == "test"
    assert logistic_accuracy(x, y, train, test, 8) > 0.6
    assert logistic_accuracy(x, shuffled(y), train, test, 8) < 0.35


def test_renamed_split_folders_and_the_label_order_of_data_classes(standin, tmp_path: Path) -> None:
    """OpenAV's `subfolders` (split folders of other names) and `classes` (the label order,
    matched ignoring case; folders of other classes skipped)."""
    source = standin("commands")
    renamed = {"train": "Обучение", "val": "dev", "test": "eval"}
    for split, folder in renamed.items():
        shutil.copytree(source / split, tmp_path / folder)
    (tmp_path / "dev" / "5_Стоп").rename(tmp_path / "dev" / "5_стоп")  # another case
    wanted = ["5_Стоп", "2_Правая", "9_Absent"]
    task = Commands()
    items = task.items(tmp_path, DataConfig(subfolders=renamed, classes=wanted))
    assert task.classes == tuple(wanted)
    by_split = {split: {task.classes[i.label] for i in items if i.split == split} for split in SPLITS}
    assert by_split == {split: {"5_Стоп", "2_Правая"} for split in SPLITS}
    stop = [i for i in items if i.label == 0]
    assert stop and all(i.audio.parent.name.casefold() == "5_стоп" for i in stop)
    assert len(items) == sum(1 for p in source.glob("*/*/*.mp4") if p.parent.name in ("5_Стоп", "2_Правая"))
    assert any("class '1_Левая' is not in data.classes" in reason for _, reason in task.skipped)
    with pytest.raises(DatasetError, match="no class folder is one of data.classes"):
        Commands().items(tmp_path, DataConfig(subfolders=renamed, classes=["x"]))
    with pytest.raises(DatasetError, match="no class folder with recordings"):
        Commands().items(tmp_path, DataConfig())  # the default split names are absent


def test_subfolders_and_classes_are_checked_when_loaded() -> None:
    with pytest.raises(ValueError, match="three different folders"):
        DataConfig(subfolders={"val": "test"})
    with pytest.raises(ValueError, match="folder name directly under data.root"):
        DataConfig(subfolders={"train": "a/b"})
    with pytest.raises(ValueError, match="distinct non-empty names"):
        DataConfig(classes=["Стоп", "стоп"])
