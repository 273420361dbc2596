"""RAVDESS: seven-part names in actor folders, the speech WAV paired with its audio-video MP4,
a split by actor, real WAV/MP4 files, every problem reported, and a learnable class signal."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from avbench.config import DataConfig
from avbench.errors import DatasetError
from avbench.registry import TASKS
from avbench.tasks.ravdess import Ravdess, _speaker
from tests.learnability import clip_features, grouped_cv_accuracy, shuffled

SPLITS = ("train", "val", "test")


def test_registered() -> None:
    assert TASKS.get("ravdess") is Ravdess
    assert Ravdess.modalities == ("audio", "video") and len(Ravdess.classes) == 8


def test_items_pair_each_speech_wav_with_its_av_mp4(standin) -> None:
    root = standin("ravdess")
    task = Ravdess()
    items = task.items(root, DataConfig())
    wavs = sorted(root.glob("Actor_*/*.wav"))
    assert task.skipped == [] and sorted(item.audio for item in items) == wavs
    actors, per_emotion = Ravdess.sizes["tiny"]
    assert len(items) == actors * per_emotion * 8
    for item in items:
        modality, channel, emotion, intensity, _, _, actor = item.audio.stem.split("-")
        assert (modality, channel) == ("03", "01") and item.audio.parent.name == f"Actor_{actor}"
        assert item.label == int(emotion) - 1 and item.speaker == actor
        assert not (emotion == "01" and intensity == "02")
        assert item.video == item.audio.with_name("01" + item.audio.stem[2:] + ".mp4") and item.video.is_file()
        assert item.audio.with_name("02" + item.audio.stem[2:] + ".mp4").is_file()
    assert {item.label for item in items} == set(range(8))


def test_split_is_by_actor_and_deterministic(standin) -> None:
    items = Ravdess().items(standin("ravdess"), DataConfig())
    actors = {split: {i.speaker for i in items if i.split == split} for split in SPLITS}
    assert all(actors[split] for split in SPLITS)
    assert not actors["train"] & actors["val"] and not actors["train"] & actors["test"]
    assert not actors["val"] & actors["test"]
    assert [i.split for i in items] == [i.split for i in Ravdess().items(standin("ravdess"), DataConfig())]
    assert [i.split for i in items] != [i.split for i in Ravdess().items(standin("ravdess"), DataConfig(split_seed=3))]


def test_actor_sex_follows_the_real_numbering() -> None:
    for actor in range(1, 25):
        f0 = _speaker(0, actor).f0
        assert f0 < 155 if actor % 2 else f0 > 165


def test_written_files_have_the_real_formats(standin) -> None:
    root = standin("ravdess")
    wav = sorted(root.glob("Actor_*/03-*.wav"))[0]
    info = sf.info(str(wav))
    assert (info.samplerate, info.channels, info.subtype) == (48000, 1, "PCM_16") and 3.0 <= info.duration <= 4.0
    av_file, video_only = wav.with_name("01" + wav.stem[2:] + ".mp4"), wav.with_name("02" + wav.stem[2:] + ".mp4")
    with av.open(str(av_file)) as container:
        assert "mp4" in container.format.name
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
        assert (video.codec_context.width, video.codec_context.height, video.average_rate) == (128, 72, 30)
        assert (audio.codec_context.sample_rate, audio.codec_context.layout.nb_channels) == (48000, 1)
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video)]
    with av.open(str(av_file)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert abs(len(frames) / 30 - info.duration) < 0.1 and abs(samples / 48000 - info.duration) < 0.1
    with av.open(str(video_only)) as container:
        assert not container.streams.audio and container.streams.video[0].codec_context.name == "h264"
        silent = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(silent) == len(frames) and np.array_equal(silent[10], frames[10])


def test_audio_comes_from_the_mp4_without_a_wav_and_nested_zips_are_found(standin, tmp_path: Path) -> None:
    """The audio and video zips each extract into their own folder of Actor_XX folders."""
    source = standin("ravdess")
    for actor in sorted(source.glob("Actor_*"))[:3]:
        for path in actor.iterdir():
            target = tmp_path / ("Audio_Speech_Actors_01-24" if path.suffix == ".wav" else "Video_Speech") / actor.name
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target / path.name)
    dropped = sorted(tmp_path.glob("Audio_Speech_Actors_01-24/Actor_*/*.wav"))[0]
    dropped.unlink()
    task = Ravdess()
    items = task.items(tmp_path, DataConfig())
    assert task.skipped == [] and len(items) == 3 * Ravdess.sizes["tiny"][1] * 8
    from_video = [item for item in items if item.audio.suffix == ".mp4"]
    assert [(item.audio.name, item.video.name) for item in from_video] == [("01" + dropped.stem[2:] + ".mp4",) * 2]


def test_bad_names_are_skipped_and_reported(standin, tmp_path: Path) -> None:
    source = sorted(standin("ravdess").glob("Actor_01/03-*.wav"))[0]
    folder = tmp_path / "Actor_01"
    folder.mkdir()
    shutil.copy(source, folder / source.name)
    bad = {
        "03-01-01-01-01-01-02.wav": "actor 02 is in the folder of actor 01",
        "03-01-01-02-01-01-01.wav": "neutral has no strong intensity",
        "01-01-03-01-01-01-01.wav": "modality 01 cannot be a .wav file",
        "03-01-09-01-01-01-01.wav": "name is not MM-VV-EE-II-SS-RR-AA (seven two-digit fields)",
        "notes.wav": "name is not MM-VV-EE-II-SS-RR-AA (seven two-digit fields)",
        "03-01-04-01-01-01-01.wav": "empty file",
    }
    for name in bad:
        if name == "03-01-04-01-01-01-01.wav":
            (folder / name).write_bytes(b"")
        else:
            shutil.copy(source, folder / name)
    task = Ravdess()
    items = task.items(tmp_path, DataConfig())
    assert [item.audio.name for item in items] == [source.name]
    assert {path.name: reason for path, reason in task.skipped} == bad


def test_missing_layout_is_one_line_error(tmp_path: Path) -> None:
    for root in (tmp_path / "absent", tmp_path):
        with pytest.raises(DatasetError) as caught:
            Ravdess().items(root, DataConfig())
        message = str(caught.value)
        assert "Actor_XX" in message and "--synthetic" in message and "\n" not in message
    (tmp_path / "Actor_01").mkdir()
    with pytest.raises(DatasetError, match="no speech recording with audio"):
        Ravdess().items(tmp_path, DataConfig())
    with pytest.raises(DatasetError, match=r"data.fold=2 but the speaker split has no folds \(set data.folds"):
        Ravdess().items(tmp_path, DataConfig(fold=2))


def test_class_signal_generalises_to_unseen_actors(standin) -> None:
    items = Ravdess().items(standin("ravdess"), DataConfig())
    x = np.stack([clip_features(item.audio) for item in items])
    y = np.array([item.label for item in items])
    actors = np.array([item.speaker for item in items])
    assert grouped_cv_accuracy(x, y, actors, 8) > 0.55
    assert grouped_cv_accuracy(x, shuffled(y), actors, 8) < 0.3
