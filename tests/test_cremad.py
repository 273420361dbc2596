"""CREMA-D task: layout parsing, speaker-independent split, the synthetic stand-in's files,
and that its class signal is learnable across speakers without leaking through trivia."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from avbench.config import DataConfig
from avbench.errors import DatasetError
from avbench.registry import TASKS
from avbench.tasks.cremad import CremaD
from avbench.tasks.splits import split_actors


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    root = tmp_path_factory.mktemp("cremad") / "CREMA-D"
    count = CremaD().synthesize(root, size="tiny", seed=0, video=True)
    return root, count


def test_registered() -> None:
    assert TASKS.get("cremad") is CremaD


def test_items_parse_all_files(tiny: tuple[Path, int]) -> None:
    root, count = tiny
    task = CremaD()
    items = task.items(root, DataConfig())
    assert len(items) == count == len(list((root / "AudioWAV").glob("*.wav")))
    assert task.skipped == []
    assert {item.label for item in items} == set(range(6))
    assert {item.split for item in items} == {"train", "val", "test"}
    assert all(item.video is not None and item.video.is_file() for item in items)
    for item in items:
        actor, sentence, emotion, level = item.audio.stem.split("_")
        assert item.speaker == actor and CremaD.classes[item.label] == emotion
        assert level in (("LO", "MD", "HI") if sentence == "IEO" and emotion != "NEU" else ("XX",))


def test_split_is_by_actor_and_deterministic(tiny: tuple[Path, int]) -> None:
    root, _ = tiny
    items = CremaD().items(root, DataConfig())
    actors = {split: {i.speaker for i in items if i.split == split} for split in ("train", "val", "test")}
    assert not actors["train"] & actors["val"]
    assert not actors["train"] & actors["test"]
    assert not actors["val"] & actors["test"]
    assert [(i.audio, i.split) for i in items] == [
        (i.audio, i.split) for i in CremaD().items(root, DataConfig(split_seed=0))
    ]
    other = CremaD().items(root, DataConfig(split_seed=1))
    assert [i.split for i in items] != [i.split for i in other]


def test_split_sizes_follow_tfds() -> None:
    real = [str(a) for a in range(1001, 1092)]
    counts = [list(split_actors(real, 0).values()).count(s) for s in ("train", "val", "test")]
    assert counts == [63, 9, 19]
    for n in range(3, 12):
        assignment = split_actors([str(1001 + a) for a in range(n)], 5)
        assert set(assignment.values()) == {"train", "val", "test"}


def test_written_files_have_the_real_formats(tiny: tuple[Path, int]) -> None:
    root, count = tiny
    wavs = sorted((root / "AudioWAV").glob("*.wav"))
    for wav in wavs[:: max(len(wavs) // 10, 1)]:
        info = sf.info(str(wav))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 1.5 <= info.duration <= 3.0
    flv = root / "VideoFlash" / f"{wavs[0].stem}.flv"
    with av.open(str(flv)) as container:
        assert container.format.name == "flv"
        assert container.streams.video and container.streams.audio
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    with av.open(str(flv)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
        rate = container.streams.audio[0].rate
    assert len(frames) >= 15 and frames[0].shape[2] == 3
    assert abs(len(frames) / 15 - sf.info(str(wavs[0])).duration) < 0.2
    assert samples / rate > 1.4

    with (root / "processedResults" / "summaryTable.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [
        "",
        "FileName",
        "VoiceVote",
        "VoiceLevel",
        "FaceVote",
        "FaceLevel",
        "MultiModalVote",
        "MultiModalLevel",
    ]
    assert len(rows) == count + 1
    assert all(row[2] == row[1].split("_")[2][0] for row in rows[1:])
    marker = json.loads((root / ".avbench-synthetic").read_text())
    files = marker.pop("files")  # the manifest of what the stand-in wrote (see tasks/standin.guard_output)
    assert marker == {"task": "cremad", "size": "tiny", "seed": 0, "count": count, "video": True}
    assert len([f for f in files if f.startswith("AudioWAV/")]) == count
    assert set(files) == {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name[0] != "."}


def test_synthesis_is_deterministic_and_refuses_real_data(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert CremaD().synthesize(first, size=1, seed=3, video=False) == 24
    CremaD().synthesize(second, size=1, seed=3, video=False)
    for wav in (first / "AudioWAV").glob("*.wav"):
        assert wav.read_bytes() == (second / "AudioWAV" / wav.name).read_bytes()
    CremaD().synthesize(first, size=1, seed=4, video=False)  # over a stand-in: replaced
    (first / ".avbench-synthetic").unlink()
    with pytest.raises(DatasetError, match="not a synthetic stand-in"):
        CremaD().synthesize(first, size=1, seed=3, video=False)


def test_missing_layout_is_one_line_error(tmp_path: Path) -> None:
    for root in (tmp_path / "absent", tmp_path):
        with pytest.raises(DatasetError) as caught:
            CremaD().items(root, DataConfig())
        message = str(caught.value)
        assert "AudioWAV" in message and "--synthetic" in message and "\n" not in message
    (tmp_path / "AudioWAV").mkdir()
    with pytest.raises(DatasetError, match="no usable .wav.*--synthetic"):
        CremaD().items(tmp_path, DataConfig())


def test_bad_names_are_skipped_and_reported(tiny: tuple[Path, int], tmp_path: Path) -> None:
    source, _ = tiny
    audio = tmp_path / "AudioWAV"
    audio.mkdir()
    good = sorted((source / "AudioWAV").glob("*.wav"))[:12]
    for wav in good:
        shutil.copy(wav, audio / wav.name)
    shutil.copy(good[0], audio / "notes.wav")
    shutil.copy(good[0], audio / "1001_XYZ_ANG_XX.wav")
    (audio / "1002_DFA_ANG_XX.wav").write_bytes(b"")
    (audio / "readme.txt").write_text("not audio")
    task = CremaD()
    items = task.items(tmp_path, DataConfig())
    assert len(items) == len(good)
    reasons = {path.name: reason for path, reason in task.skipped}
    assert set(reasons) == {"notes.wav", "1001_XYZ_ANG_XX.wav", "1002_DFA_ANG_XX.wav"}
    assert "sentence" in reasons["1001_XYZ_ANG_XX.wav"] and reasons["1002_DFA_ANG_XX.wav"] == "empty file"
    assert all(item.video is None for item in items)


# ---------------------------------------------------------------------------- learnability


def _mel_filters(sample_rate: int = 16000, n_fft: int = 512, n_mels: int = 64) -> np.ndarray:
    def to_hz(mel: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)

    points = to_hz(np.linspace(0.0, 2595.0 * np.log10(1.0 + sample_rate / 2 / 700.0), n_mels + 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    low, mid, high = points[:-2, None], points[1:-1, None], points[2:, None]
    return np.maximum(0.0, np.minimum((freqs - low) / (mid - low), (high - freqs) / (high - mid)))


def _clip_features(path: Path, filters: np.ndarray) -> np.ndarray:
    """Loudness-free summaries of a 64-band log-mel (25 ms / 10 ms): spectral shape, per-band
    variation and change, and the envelope's modulation spectrum up to 12 Hz."""
    wave, _ = sf.read(str(path), dtype="float32")
    frames = np.lib.stride_tricks.sliding_window_view(wave, 400)[::160] * np.hanning(400)
    logmel = np.log(np.abs(np.fft.rfft(frames, 512)) ** 2 @ filters.T + 1e-8)
    loudest = logmel.max(axis=1)
    active = logmel[loudest > loudest.max() - 4.5]
    shape = active.mean(axis=0) - active.mean()
    groups = np.arange(0, 64, 4)
    spread = np.add.reduceat(active.std(axis=0), groups)
    change = np.add.reduceat(np.abs(np.diff(active, axis=0)).mean(axis=0), groups)
    envelope = np.log(np.exp(logmel).sum(axis=1) + 1e-8)
    modulation = np.abs(np.fft.rfft(envelope - envelope.mean(), 1024))[:123]
    modulation = np.add.reduceat(modulation, np.arange(0, 123, 5))
    return np.concatenate([shape, spread, change, 20.0 * modulation / modulation.sum()])


def _logistic_accuracy(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    weights, bias, onehot = np.zeros((x.shape[1], 6)), np.zeros(6), np.eye(6)[y[train]]
    for _ in range(500):
        logits = x[train] @ weights + bias
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        grad = (probs - onehot) / train.sum()
        weights -= 0.5 * (x[train].T @ grad + 1e-2 * weights)
        bias -= 0.5 * grad.sum(axis=0)
    return float(((x[test] @ weights + bias).argmax(axis=1) == y[test]).mean())


def test_class_signal_generalises_to_unseen_actors(tiny: tuple[Path, int]) -> None:
    root, _ = tiny
    items = CremaD().items(root, DataConfig())
    filters = _mel_filters()
    x = np.stack([_clip_features(item.audio, filters) for item in items])
    y = np.array([item.label for item in items])
    split = np.array([item.split for item in items])
    train, test = split == "train", split == "test"
    x = (x - x[train].mean(axis=0)) / (x[train].std(axis=0) + 1e-6)

    assert _logistic_accuracy(x, y, train, test) > 0.5
    shuffled = y.copy()
    shuffled[train] = np.random.default_rng(0).permutation(y[train])
    assert _logistic_accuracy(x, shuffled, train, test) < 0.4

    # Duration and loudness alone must not give the class away.
    duration = np.array([sf.info(str(item.audio)).duration for item in items])
    loudness = np.array([np.log(np.mean(sf.read(str(item.audio))[0] ** 2)) for item in items])
    for cue in (duration, loudness):
        centres = np.array([cue[train & (y == k)].mean() for k in range(6)])
        nearest = np.abs(cue[test, None] - centres).argmin(axis=1)
        assert (nearest == y[test]).mean() < 0.4


# ---------------------------------------------------------------------------- label source


def test_label_source_takes_the_raters_vote(tiny: tuple[Path, int], tmp_path: Path) -> None:
    """voice/face/multimodal label by the summaryTable vote; ties and missing votes are
    skipped and reported; the split stays the one by actor."""
    source, _ = tiny
    shutil.copytree(source / "AudioWAV", tmp_path / "AudioWAV")
    with (source / "processedResults" / "summaryTable.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, rows = rows[0], rows[1:]
    stems = [row[1] for row in rows]
    rows[0][2] = "N:S"  # a tie in VoiceVote
    rows[1][2] = ""  # no VoiceVote
    rows[2][2] = "S" if rows[2][1].split("_")[2] != "SAD" else "A"  # the raters heard another emotion
    rows[3][2] = "Q"
    del rows[4]  # no row at all
    (tmp_path / "processedResults").mkdir()
    with (tmp_path / "processedResults" / "summaryTable.csv").open("w", newline="") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows([header, *rows])

    by_name = {i.audio.stem: i for i in CremaD().items(tmp_path, DataConfig())}
    task = CremaD()
    voted = {i.audio.stem: i for i in task.items(tmp_path, DataConfig(label_source="voice"))}
    assert {path.stem: reason for path, reason in task.skipped} == {
        stems[0]: "VoiceVote is a tie (N:S)",
        stems[1]: "no VoiceVote",
        stems[3]: "unknown VoiceVote 'Q'",
        stems[4]: "no row in processedResults/summaryTable.csv",
    }
    assert set(voted) == set(by_name) - {stems[i] for i in (0, 1, 3, 4)}
    assert CremaD.classes[voted[stems[2]].label] == {"S": "SAD", "A": "ANG"}[rows[2][2]]
    assert all(voted[s].label == by_name[s].label for s in voted if s != stems[2])
    assert all(voted[s].split == by_name[s].split for s in voted)
    face = CremaD().items(tmp_path, DataConfig(label_source="face"))
    assert len(face) == len(by_name) - 1  # only the clip without a row


def test_label_source_without_the_summary_table_is_one_line_error(tiny: tuple[Path, int], tmp_path: Path) -> None:
    source, _ = tiny
    shutil.copytree(source / "AudioWAV", tmp_path / "AudioWAV")
    with pytest.raises(DatasetError, match=r"label_source=multimodal needs processedResults/summaryTable.csv"):
        CremaD().items(tmp_path, DataConfig(label_source="multimodal"))
    with pytest.raises(DatasetError, match=r"data.fold=2 but the speaker split has no folds \(set data.folds"):
        CremaD().items(tmp_path, DataConfig(fold=2))
