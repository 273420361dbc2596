"""audiofolder: any ROOT/<class>/… dataset, a seeded split stratified by class, or by speaker
with data.speaker_regex, formats soundfile reads, every problem reported, and a learnable
stand-in."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avbench.config import DataConfig
from avbench.errors import DatasetError
from avbench.registry import TASKS
from avbench.tasks.audiofolder import SPEAKER_REGEX, AudioFolder
from avbench.tasks.splits import split_counts, stratified_split
from tests.learnability import clip_features, logistic_accuracy, shuffled

SPLITS = ("train", "val", "test")


def test_registered() -> None:
    assert TASKS.get("audiofolder") is AudioFolder


def test_split_is_stratified_by_class_and_seeded(standin) -> None:
    root = standin("audiofolder")
    task = AudioFolder()
    items = task.items(root, DataConfig())
    assert task.skipped == [] and sorted(item.audio for item in items) == sorted(root.glob("*/*.wav"))
    assert task.classes == tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
    speakers, takes = AudioFolder.sizes["tiny"]
    per_class = speakers * takes
    for label in range(len(task.classes)):
        counts = Counter(item.split for item in items if item.label == label)
        assert tuple(counts[split] for split in SPLITS) == split_counts(per_class)
    again = AudioFolder().items(root, DataConfig())
    other = AudioFolder().items(root, DataConfig(split_seed=1))
    assert [i.split for i in items] == [i.split for i in again] != [i.split for i in other]


def test_stratified_split_keeps_a_class_put_when_another_grows() -> None:
    labels = ["a"] * 10 + ["b"] * 7
    first = stratified_split(labels, seed=4)
    assert Counter(first[:10]) == {"train": 7, "val": 1, "test": 2}
    assert Counter(first[10:]) == {"train": 4, "val": 1, "test": 2}
    grown = stratified_split(labels + ["b"] * 5, seed=4)
    assert grown[:10] == first[:10]
    assert split_counts(2) == (1, 0, 1) and split_counts(3) == (1, 1, 1) and split_counts(0) == (0, 0, 0)


def test_speaker_regex_keeps_every_speaker_in_one_split(standin) -> None:
    items = AudioFolder().items(standin("audiofolder"), DataConfig(speaker_regex=SPEAKER_REGEX))
    assert all(item.speaker == item.audio.name[:8] for item in items)
    speakers = {split: {i.speaker for i in items if i.split == split} for split in SPLITS}
    assert all(speakers.values())
    assert not speakers["train"] & speakers["val"] and not speakers["train"] & speakers["test"]
    assert not speakers["val"] & speakers["test"]
    assert len(set().union(*speakers.values())) == AudioFolder.sizes["tiny"][0]


def test_any_soundfile_format_nested_folders_and_problems(tmp_path: Path) -> None:
    wave = (0.1 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    (tmp_path / "dog" / "session2").mkdir(parents=True)
    (tmp_path / "cat").mkdir()
    (tmp_path / "empty_class").mkdir()
    (tmp_path / ".cache").mkdir()
    sf.write(tmp_path / "dog" / "a.wav", wave, 16000)
    sf.write(tmp_path / "dog" / "b.flac", wave, 22050)
    sf.write(tmp_path / "dog" / "session2" / "c.ogg", wave, 16000)
    sf.write(tmp_path / "cat" / "d.wav", wave, 8000)
    sf.write(tmp_path / "cat" / "e.wav", wave, 8000)
    sf.write(tmp_path / "stray.wav", wave, 16000)
    (tmp_path / "cat" / "README.md").write_text("cats")
    (tmp_path / "cat" / "f.wav").write_bytes(b"")
    (tmp_path / "cat" / "g.wav").symlink_to(tmp_path / "gone.wav")
    task = AudioFolder()
    items = task.items(tmp_path, DataConfig())
    assert task.classes == ("cat", "dog")
    assert sorted((task.classes[i.label], i.audio.name) for i in items) == [
        ("cat", "d.wav"), ("cat", "e.wav"), ("dog", "a.wav"), ("dog", "b.flac"), ("dog", "c.ogg"),
    ]  # fmt: skip
    assert {(path.name, reason) for path, reason in task.skipped} == {
        ("stray.wav", "file outside a class folder"),
        ("README.md", "not an audio or video file"),
        ("f.wav", "empty file"),
        ("g.wav", "unreadable file: No such file or directory"),
        ("empty_class", "class folder holds no audio"),
    }
    unmatched = AudioFolder()
    assert unmatched.items(tmp_path, DataConfig(speaker_regex="^([a-c])")) != []
    assert {path.name for path, reason in unmatched.skipped if "speaker_regex" in reason} == {"d.wav", "e.wav"}


def test_missing_layout_is_one_line_error(tmp_path: Path) -> None:
    for root in (tmp_path / "absent", tmp_path):
        with pytest.raises(DatasetError) as caught:
            AudioFolder().items(root, DataConfig())
        message = str(caught.value)
        assert "ROOT/<class>/" in message and "--synthetic" in message and "\n" not in message
    with pytest.raises(DatasetError, match="label_source='voice' does not apply"):
        AudioFolder().items(tmp_path, DataConfig(label_source="voice"))


def test_written_files_are_one_second_16k_wavs(standin) -> None:
    wavs = sorted(standin("audiofolder").glob("*/*.wav"))
    for wav in wavs[:: max(len(wavs) // 10, 1)]:
        info = sf.info(str(wav))
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (16000, 1, "PCM_16", 16000)
        assert wav.stem[8:16] == "_nohash_"


def test_synthesis_refuses_to_write_into_a_real_dataset(standin, tmp_path: Path) -> None:
    shutil.copytree(standin("audiofolder") / "go", tmp_path / "go")
    with pytest.raises(DatasetError, match="not a synthetic stand-in; refusing to overwrite"):
        AudioFolder().synthesize(tmp_path, size="tiny")
    assert len(list((tmp_path / "go").iterdir())) == AudioFolder.sizes["tiny"][0]


def test_class_signal_generalises_to_unseen_speakers(standin) -> None:
    items = AudioFolder().items(standin("audiofolder"), DataConfig(speaker_regex=SPEAKER_REGEX))
    x = np.stack([clip_features(item.audio) for item in items])
    y = np.array([item.label for item in items])
    split = np.array([item.split for item in items])
    train, test = split == "train", split == "test"
    assert logistic_accuracy(x, y, train, test, 10) > 0.6
    assert logistic_accuracy(x, shuffled(y), train, test, 10) < 0.3
