"""`avbench data inspect`: what a dataset folder holds, as its task's loader sees it (the task
is found by avbench.tasks.detection; this module knows no task).

Files are listed by the task (`Task.items`), so the splits and classes are those a run would
use; each file's header is read (soundfile for WAV/FLAC/OGG/MP3, PyAV for containers); only
the leak checks decode the audio. Every problem found (an unparsable name, an empty or corrupt file, a
file the metadata lists but that is missing, a class outside the class list, an unreadable
folder) is listed with its path, and so is every split leak (avbench.data.leaks). The result
is plain data; the CLI only renders it.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from avbench.config import DataConfig
from avbench.data.leaks import find_leaks
from avbench.errors import DatasetError
from avbench.spec import SPLITS, UNKNOWN_SPEAKER, Task

_SOUNDFILE_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".mp3"})


@dataclass(frozen=True)
class MediaInfo:
    """A file's header: what it holds, without decoding it."""

    container: str  # the file's suffix: wav, mp4, flac, …
    audio_codec: str | None = None  # PCM_16, aac, …
    duration: float | None = None  # seconds of audio (or of video when there is no audio)
    sample_rate: int | None = None
    channels: int | None = None
    video_codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None


@dataclass(frozen=True)
class Durations:
    min: float
    mean: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Durations | None:
        return cls(min(values), sum(values) / len(values), max(values)) if values else None


@dataclass
class SplitSummary:
    files: int = 0
    speakers: int = 0  # distinct known speakers (0 when the layout does not name them)
    durations: Durations | None = None


@dataclass
class Inspection:
    """Everything `avbench data inspect` shows. Counts are the loader's items (files it would
    use); problems are (path relative to the root, reason)."""

    root: str
    task: str
    detected_by: str  # "--task", "marker" or "layout"
    synthetic: bool
    files: int
    classes: list[str]
    counts: dict[str, dict[str, int]]  # class → split → files; other heads' classes as "<head>/<class>"
    splits: dict[str, SplitSummary]
    durations: Durations | None
    sample_rates: dict[int, int]  # Hz → files
    channels: dict[int, int]
    formats: dict[str, int]  # "wav PCM_16", "mp4 h264+aac" → files
    video: dict[str, int]  # "128×72 @ 30 fps" → files
    folds: dict[int, int] | None = None  # fold → files, for tasks with predefined folds
    problems: list[tuple[str, str]] = field(default_factory=list)
    leak_checks: list[str] = field(default_factory=list)  # avbench.data.leaks.CHECKS that ran
    leaks: list[dict] = field(default_factory=list)  # one per finding: check, subject, paths per split, files


def probe(path: Path) -> MediaInfo:
    """Read a file's header. Raises DatasetError with the reason when it cannot be read."""
    suffix = path.suffix.lower()
    if suffix in _SOUNDFILE_SUFFIXES:
        import soundfile as sf

        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError, OSError):
            pass  # FFmpeg reads some files libsndfile does not (e.g. WAV with an odd codec)
        else:
            return MediaInfo(
                container=suffix[1:],
                audio_codec=info.subtype,
                duration=info.frames / info.samplerate if info.samplerate else None,
                sample_rate=info.samplerate,
                channels=info.channels,
            )
    return _probe_container(path)


def _probe_container(path: Path) -> MediaInfo:
    import av

    try:
        with av.open(str(path)) as container:
            audio = container.streams.audio[0] if container.streams.audio else None
            video = container.streams.video[0] if container.streams.video else None
            if audio is None and video is None:
                raise DatasetError(f"{path.name}: no audio or video stream")
            total = container.duration / 1_000_000 if container.duration else None
            duration = _stream_seconds(audio) if audio is not None else None
            if duration is None:
                duration = _stream_seconds(video) if video is not None else None
            rate = video.average_rate or video.guessed_rate if video is not None else None
            return MediaInfo(
                container=path.suffix.lower()[1:],
                audio_codec=audio.codec_context.codec.canonical_name if audio is not None else None,
                duration=duration if duration is not None else total,
                sample_rate=audio.codec_context.sample_rate if audio is not None else None,
                channels=audio.codec_context.layout.nb_channels if audio is not None else None,
                video_codec=video.codec_context.codec.canonical_name if video is not None else None,
                width=video.codec_context.width if video is not None else None,
                height=video.codec_context.height if video is not None else None,
                fps=round(float(rate), 3) if rate else None,
            )
    except av.error.FFmpegError as exc:
        raise DatasetError(f"corrupt or unreadable: {exc.strerror or exc}") from None


def _stream_seconds(stream) -> float | None:
    if stream.duration is None or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def inspect_listing(root: Path, task: Task, data: DataConfig, *, detected_by: str, synthetic: bool) -> Inspection:
    """List `root` with the task's loader and read every file's header (`detected_by` and
    `synthetic` are reported as given: finding the task is the tasks' job)."""
    root = Path(root)
    items = task.items(root, data)
    problems: dict[tuple[str, str], None] = {}
    for path, reason in [*task.skipped, *_unreadable_folders(root)]:
        problems[(_relative(path, root), reason)] = None

    # Headers are small reads: threads overlap the waits on a disk or a network share.
    paths = list(dict.fromkeys([item.audio for item in items] + [item.video for item in items if item.video]))
    with ThreadPoolExecutor(max_workers=8) as pool:
        headers = dict(zip(paths, pool.map(_probe_or_reason, paths), strict=True))
    durations: dict[str, list[float]] = {split: [] for split in SPLITS}
    tallies: dict[str, Counter] = {key: Counter() for key in ("sample_rates", "channels", "formats", "video")}
    for item in items:
        audio = _usable(headers[item.audio], item.audio, root, problems, want="audio")
        if audio is not None:
            if audio.duration is not None:
                durations[item.split].append(audio.duration)
            _tally(tallies, audio)
        if item.video is not None:
            video = (
                audio
                if item.video == item.audio
                else _usable(headers[item.video], item.video, root, problems, want="video")
            )
            if video is not None and video.width is not None:
                tallies["video"][f"{video.width}×{video.height} @ {video.fps:g} fps"] += 1
            if video is not None and item.video != item.audio:
                tallies["formats"][_format(video)] += 1

    classes = list(task.classes)
    counts = {name: {split: 0 for split in SPLITS} for name in classes}
    for item in items:
        counts[classes[item.label]][item.split] += 1
    counts.update(_other_head_counts(task, items))
    splits = {
        split: SplitSummary(
            files=sum(1 for item in items if item.split == split),
            speakers=len({item.speaker for item in items if item.split == split and item.speaker != UNKNOWN_SPEAKER}),
            durations=Durations.of(durations[split]),
        )
        for split in SPLITS
    }
    leaks = find_leaks(items, root)
    folds = None
    if task.folds_for(data) is not None:
        folds = dict(sorted(Counter(item.fold for item in items if item.fold is not None).items()))
    return Inspection(
        root=str(root),
        task=task.name,
        detected_by=detected_by,
        synthetic=synthetic,
        files=len(items),
        classes=classes,
        counts=counts,
        splits=splits,
        durations=Durations.of([d for values in durations.values() for d in values]),
        sample_rates=dict(sorted(tallies["sample_rates"].items())),
        channels=dict(sorted(tallies["channels"].items())),
        formats=dict(tallies["formats"].most_common()),
        video=dict(tallies["video"].most_common()),
        folds=folds,
        problems=sorted(problems),
        leak_checks=leaks.checks,
        leaks=[dataclasses.asdict(leak) for leak in leaks.leaks],
    )


def _probe_or_reason(path: Path) -> MediaInfo | str:
    try:
        return probe(path)
    except DatasetError as exc:
        return str(exc)


def _usable(info: MediaInfo | str, path: Path, root: Path, problems: dict, *, want: str) -> MediaInfo | None:
    """The header, or None after recording why the file is unusable as `want`."""
    if isinstance(info, str):
        problems[(_relative(path, root), info)] = None
        return None
    if want == "audio" and info.sample_rate is None:
        problems[(_relative(path, root), "no audio stream")] = None
        return None
    if want == "audio" and not info.duration:
        problems[(_relative(path, root), "no audio samples")] = None
        return None
    if want == "video" and info.width is None:
        problems[(_relative(path, root), "no video stream")] = None
        return None
    return info


def _tally(tallies: dict[str, Counter], info: MediaInfo) -> None:
    tallies["sample_rates"][info.sample_rate] += 1
    tallies["channels"][info.channels] += 1
    tallies["formats"][_format(info)] += 1


def _format(info: MediaInfo) -> str:
    codecs = "+".join(codec for codec in (info.video_codec, info.audio_codec) if codec)
    return f"{info.container} {codecs}".strip()


def _unreadable_folders(root: Path) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []

    def record(error: OSError) -> None:
        found.append((Path(error.filename or root), f"unreadable folder: {error.strerror}"))

    for _ in os.walk(root, onerror=record):
        pass
    return found


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix() or "."
    except ValueError:
        return str(path)


def _other_head_counts(task: Task, items: list) -> dict[str, dict[str, int]]:
    """A multi-head task's files per class of every head after the first, as "<head>/<class>"."""
    counts: dict[str, dict[str, int]] = {}
    for position, (head, names) in enumerate(list(task.heads.items())[1:], start=1):
        for name in names:
            counts[f"{head}/{name}"] = {split: 0 for split in SPLITS}
        for item in items:
            counts[f"{head}/{names[item.targets[position]]}"][item.split] += 1
    return counts
