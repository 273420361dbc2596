"""Bad data files: skipped and listed in the run record by default, one clear line with --strict.

Every case is a real file on disk in the CREMA-D layout (or, for audio that lives only in a
video container, a task over MP4 files), run through the CLI or prepare_data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avbench.config import DataConfig
from avbench.data.cache import FeatureCache
from avbench.data.dataset import prepare_data
from avbench.errors import ConfigError
from avbench.results.records import iter_records
from avbench.tasks.cremad import SENTENCES
from tests.conftest import REPO, TINY_VALUES
from tests.media import ListedTask, gray, tone, write_audio_av, write_video

RUN = ("run", "spectrogram-cnn-cremad", "--preset", "tiny", *TINY_VALUES, "--no-wandb", "--set", "train.epochs=1")


def _free_names(source: Path, count: int) -> list[str]:
    """CREMA-D names of an existing actor that the stand-in did not record."""
    taken = {p.stem for p in (source / "AudioWAV").glob("*.wav")}
    actor = sorted(taken)[0][:4]
    names = [f"{actor}_{s}_ANG_XX" for s in SENTENCES[1:] if f"{actor}_{s}_ANG_XX" not in taken]
    assert len(names) >= count
    return names[:count]


def _bad_files(source: Path) -> dict[str, tuple[str, bytes | None, str | None]]:
    """kind → (file name, content, the reason it must be reported with; None = it must be kept)."""
    good = sorted((source / "AudioWAV").glob("*.wav"))[0].read_bytes()
    no_samples, nan = Path(source.parent / "no_samples.wav"), Path(source.parent / "nan.wav")
    sf.write(str(no_samples), np.zeros(0, np.float32), 16000, subtype="FLOAT")
    sf.write(str(nan), np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    names = _free_names(source, 5)
    noise = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    return {
        "corrupt": (f"{names[0]}.wav", b"RIFF" + noise, "not decodable"),
        "empty": (f"{names[1]}.wav", b"", "empty file"),
        "no samples": (f"{names[2]}.wav", no_samples.read_bytes(), "no audio samples"),
        "nan samples": (f"{names[3]}.wav", nan.read_bytes(), "NaN"),
        "unknown class": ("1001_DFA_XYZ_XX.wav", good, "unknown emotion 'XYZ'"),
        "truncated": (f"{names[4]}.wav", good[: len(good) // 2], None),  # half a clip is still a clip
    }


def _dataset(tmp_path: Path, source: Path, files: dict[str, bytes], video: bool = False) -> Path:
    """The stand-in's WAVs (linked, not copied) plus `files`; with `video`, an FLV for each
    (a stand-in's own, or its first one for the added names)."""
    root = tmp_path / "cremad"
    (root / "AudioWAV").mkdir(parents=True)
    for wav in sorted((source / "AudioWAV").glob("*.wav")):
        (root / "AudioWAV" / wav.name).symlink_to(wav)
    for name, content in files.items():
        (root / "AudioWAV" / name).write_bytes(content)
    if video:
        (root / "VideoFlash").mkdir()
        flvs = sorted((source / "VideoFlash").glob("*.flv"))
        for wav in (root / "AudioWAV").iterdir():
            own = source / "VideoFlash" / f"{wav.stem}.flv"
            (root / "VideoFlash" / own.name).symlink_to(own if own.exists() else flvs[0])
    return root


@pytest.fixture
def source(synthetic_data) -> Path:
    return synthetic_data / "cremad-tiny"


def test_bad_files_are_skipped_listed_and_the_rest_trains(cli, workspace, source):
    bad = _bad_files(source)
    root = _dataset(workspace, source, {name: content for name, content, _ in bad.values()}, video=True)
    stems = sorted(p.stem for p in (source / "AudioWAV").glob("*.wav"))
    broken_video, missing_video = root / "VideoFlash" / f"{stems[1]}.flv", root / "VideoFlash" / f"{stems[2]}.flv"
    broken_video.unlink()
    broken_video.write_bytes(b"FLV\x01\x05" + bytes(400))
    missing_video.unlink()
    cli(
        *RUN,
        "--set",
        f"data.root={root}",
        "--set",
        "data.modalities=[audio, video]",
        "--set",
        "data.num_frames=2",
        "--set",
        "data.image_size=16",
    )
    (record,) = list(iter_records(workspace / "results"))
    assert record.status == "completed"
    reasons = {Path(path).name: reason for path, reason in record.skipped_files}
    for kind, (name, _, reason) in bad.items():
        if reason is None:
            assert name not in reasons, kind
        else:
            assert reason in reasons.pop(name), kind
    assert reasons.pop(broken_video.name).startswith("not decodable")
    assert reasons.pop(f"{stems[2]}.wav") == "no video file"
    assert reasons == {}  # nothing else was dropped
    good = len(stems) + 1 - 2  # + the truncated clip, − the two without a usable video
    assert sum(record.data_sizes.values()) == good
    audio, video = record.cache["by_modality"]["audio"], record.cache["by_modality"]["video"]
    assert audio["failed"] == 3 and video["failed"] == 1  # empty/unknown never reach decoding


@pytest.mark.parametrize("kind", ["corrupt", "empty", "no samples", "nan samples", "unknown class"])
def test_strict_stops_with_one_line_naming_the_file(cli, workspace, source, kind):
    name, content, reason = _bad_files(source)[kind]
    root = _dataset(workspace, source, {name: content})
    result = cli(*RUN, "--set", f"data.root={root}", "--strict", expect=1)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and name in lines[0] and reason in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_sweep_strict_stops_with_one_line(cli, workspace, source):
    name, content, reason = _bad_files(source)["corrupt"]
    root = _dataset(workspace, source, {name: content})
    result = cli(
        "sweep",
        "spectrogram-cnn-cremad",
        "--preset",
        "tiny",
        "--trials",
        "1",
        "--no-wandb",
        "--set",
        f"data.root={root}",
        "--strict",
        expect=1,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and name in lines[0] and reason in lines[0], result.stderr


def test_audio_only_in_a_video_container(tmp_path):
    """Audio taken from MP4s (as a folder-of-videos task does): a video without an audio track,
    a missing or corrupt video are skipped with their reason; the good ones are used."""

    def clip(name: str, audio: bool = True, freq: float = 440.0) -> Path:
        return write_video(
            tmp_path / name,
            lambda t: gray(100 + 50 * t),
            np.arange(10) / 10,
            audio=(tone(1, 16000, freq=freq), 16000) if audio else None,
        )

    good = [clip(f"good{i}.mp4", freq=300.0 + 150.0 * i) for i in range(3)]  # three recordings, not copies
    silent, broken = clip("silent.mp4", audio=False), tmp_path / "broken.mp4"
    broken.write_bytes(good[0].read_bytes()[:200])
    m4a = write_audio_av(tmp_path / "sound.m4a", tone(1, 16000), 16000, container_format="ipod", codec="aac")
    rows = [
        (good[0], good[0], 0, "train"),
        (good[1], good[1], 1, "val"),
        (good[2], good[2], 0, "test"),
        (silent, silent, 1, "train"),
        (broken, broken, 0, "train"),
        (m4a, None, 1, "train"),
    ]
    data = DataConfig(modalities=["audio", "video"], clip_seconds=1.0, n_mels=16, num_frames=2, image_size=8)
    prepared = prepare_data(ListedTask(rows), tmp_path, data, FeatureCache(tmp_path / "cache"))
    assert prepared.sizes() == {"train": 1, "val": 1, "test": 1}
    reasons = {Path(path).name: reason for path, reason in prepared.skipped}
    assert reasons["silent.mp4"].startswith("no audio track")
    assert reasons["sound.m4a"] == "no video file"
    assert "broken.mp4" in reasons
    with pytest.raises(Exception, match="silent.mp4: no audio track"):
        prepare_data(
            ListedTask(rows[:4]), tmp_path, data.model_copy(update={"strict": True}), FeatureCache(tmp_path / "cache")
        )


def test_a_modality_the_task_lacks_is_a_config_error(tmp_path):
    task = ListedTask([])
    task.modalities = ("audio",)
    with pytest.raises(ConfigError, match="task 'listed' has no video"):
        prepare_data(task, tmp_path, DataConfig(modalities=["audio", "video"]), FeatureCache(tmp_path / "cache"))


def _without_root_powers() -> list[str]:
    """A prefix that makes permissions bite: root normally reads any file (CAP_DAC_OVERRIDE)."""
    if os.geteuid() != 0:
        return []
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]


# Run in one process without root's powers: the default run's skip list, then --strict and an
# unreadable folder through the CLI (both stop before training).
UNREADABLE_SCRIPT = """
import json, sys
from pathlib import Path
from click.testing import CliRunner
from avbench.cli import cli
from avbench.config import DataConfig
from avbench.data.cache import FeatureCache
from avbench.data.dataset import prepare_data
from avbench.errors import ConfigError
from avbench.tasks.cremad import CremaD

root, unreadable, run = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
out = {"skipped": prepare_data(CremaD(), root, DataConfig(clip_seconds=0.5, n_mels=8),
                               FeatureCache(root.parent / "cache")).skipped}
out["strict"] = CliRunner().invoke(cli, [*run, "--strict"]).stderr
unreadable.chmod(0o644)
(root / "AudioWAV").chmod(0)
out["folder"] = CliRunner().invoke(cli, run).stderr
(root / "AudioWAV").chmod(0o755)
print(json.dumps(out))
"""


def test_unreadable_files_and_folders(workspace, source):
    name = _free_names(source, 1)[0] + ".wav"
    root = _dataset(workspace, source, {name: sorted((source / "AudioWAV").glob("*.wav"))[0].read_bytes()})
    unreadable = root / "AudioWAV" / name
    unreadable.chmod(0)
    proc = subprocess.run(
        [
            *_without_root_powers(),
            sys.executable,
            "-c",
            UNREADABLE_SCRIPT,
            str(root),
            str(unreadable),
            *RUN,
            "--set",
            f"data.root={root}",
        ],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # Default: the file is skipped with its reason, everything else is used.
    assert out["skipped"] == [[str(unreadable), "Permission denied"]]
    # --strict: one line naming it.
    assert out["strict"].strip().splitlines() == [f"Error: {unreadable}: Permission denied"]
    # An unreadable folder of the layout: one line naming it, whatever the mode.
    assert out["folder"].strip().splitlines() == [f"Error: cannot read {root / 'AudioWAV'}: Permission denied"]


def test_strict_and_cache_workers_do_not_make_a_different_study(workspace):
    from avbench.catalog import load_experiment
    from avbench.sweep.core import config_fingerprint
    from avbench.sweep.space import resolve_space

    def fingerprint(*overrides: str) -> str:
        loaded = load_experiment("spectrogram-cnn-cremad", preset="tiny", overrides=overrides)
        return config_fingerprint(loaded, resolve_space(loaded))

    plain = fingerprint()
    assert fingerprint("data.strict=true", "data.cache_workers=1") == plain  # resuming with --strict is fine
    assert fingerprint("data.n_mels=16") != plain
