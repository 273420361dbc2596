"""CREMA-D: 6-way acted emotion, 91 actors, 16 kHz WAV plus Flash video.

The split is speaker-independent (by actor) and follows TFDS `crema_d`: sorted actor IDs
shuffled with `np.random.RandomState(split_seed)`, then 70/10/20. With the 91 real actors and
seed 0 that gives TFDS's 63/9/19 actors. Random per-clip splits (as in OGM-GE) let a model
recognise the actor and overstate accuracy, so they are not offered.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from avbench.config import DataConfig
from avbench.data.audio import EMPTY_WAV_BYTES
from avbench.errors import DatasetError
from avbench.registry import register_task
from avbench.spec import UNKNOWN_SPEAKER, Item, Task
from avbench.tasks import standin, synth, synth_av
from avbench.tasks.split_csv import read_split_csv
from avbench.tasks.splits import split_speakers

SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
LEVELS = ("LO", "MD", "HI", "XX")
SAMPLE_RATE = 16000
VIDEO_FPS = 15
VIDEO_SIZE = 64
# (actors, clips per actor and emotion); None = every real sentence/level combination (82).
SIZES: dict[str, tuple[int, int | None]] = {
    "tiny": (10, 2),
    "small": (40, 4),
    "medium": (91, 4),
    "full": (91, None),
}
_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
_INTENSITY = {"LO": 0.5, "MD": 0.8, "HI": 1.0, "XX": 0.8}
SUMMARY = Path("processedResults") / "summaryTable.csv"
_VOTE_COLUMNS = {"voice": "VoiceVote", "face": "FaceVote", "multimodal": "MultiModalVote"}
_VOTE_LETTERS = {"A": "ANG", "D": "DIS", "F": "FEA", "H": "HAP", "N": "NEU", "S": "SAD"}
# Emotion names a split CSV may use besides CREMA-D's codes.
_EMOTION_NAMES = {
    **{name: "ANG" for name in ("anger", "angry")},
    "disgust": "DIS",
    "disgusted": "DIS",
    "fear": "FEA",
    "fearful": "FEA",
    **{name: "HAP" for name in ("happy", "happiness", "joy")},
    "neutral": "NEU",
    **{name: "SAD" for name in ("sad", "sadness")},
}


def parse_name(stem: str) -> tuple[str, str, str, str] | str:
    """(actor, sentence, emotion, level), or the reason the name is not a CREMA-D name."""
    match = _NAME.match(stem)
    if match is None:
        return "name is not AAAA_SSS_EEE_LL"
    actor, sentence, emotion, level = match.groups()
    if sentence not in SENTENCES:
        return f"unknown sentence code '{sentence}'"
    if emotion not in CremaD.classes:
        return f"unknown emotion '{emotion}'"
    if level not in LEVELS:
        return f"unknown level '{level}'"
    return actor, sentence, emotion, level


def csv_emotion(written: str) -> str | None:
    """The CREMA-D code of an emotion as a split CSV writes it (ANG, anger, Angry…), or None."""
    code = written.strip().upper()
    if code in CremaD.classes:
        return code
    return _EMOTION_NAMES.get(written.strip().lower())


def clip_plan(emotion: str, per_emotion: int | None, rng: np.random.Generator) -> list[tuple[str, str]]:
    """The (sentence, level) pairs one actor records for `emotion`, as in the real corpus:
    only IEO has LO/MD/HI (NEU: XX), the other 11 sentences are XX."""
    ieo = [("IEO", "XX")] if emotion == "NEU" else [("IEO", level) for level in ("LO", "MD", "HI")]
    options = ieo + [(s, "XX") for s in SENTENCES[1:]]
    if per_emotion is None or per_emotion >= len(options):
        return options
    picked = rng.choice(len(options), size=per_emotion, replace=False)
    return [options[i] for i in sorted(picked)]


@register_task("cremad")
class CremaD(Task):
    title = "CREMA-D"
    classes = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
    modalities = ("audio", "video")
    data_options = frozenset({"label_source", "split_csv", "audio_root", "fold", "folds"})
    data_defaults = {"root": "data/cremad", "clip_seconds": 2.5}
    layout = "ROOT/AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav (CREMA-D; optional ROOT/VideoFlash/*.flv)"
    sizes = SIZES

    def __init__(self) -> None:
        self.skipped: list[tuple[Path, str]] = []

    def _missing(self, what: str) -> DatasetError:
        return DatasetError(f"CREMA-D: {what}; expected {self.layout}; use --synthetic for the synthetic stand-in")

    def items(self, root: Path, data: DataConfig) -> list[Item]:
        """Every parsable WAV with its actor's split; unparsable names go to `self.skipped`.

        With `data.label_source` voice / face / multimodal the label is the raters' majority
        vote from processedResults/summaryTable.csv; a tie or a missing vote skips the clip.
        The split does not depend on the label source. With `data.split_csv` the CSVs give the
        clips, their splits and labels instead; `data.audio_root` is a folder of the WAVs when
        they are not in ROOT/AudioWAV.
        """
        self.check_data_options(data)
        root = Path(root)
        self.skipped = []
        if not root.is_dir():
            raise self._missing(f"{root} does not exist")
        audio_dir = Path(data.audio_root) if data.audio_root else root / "AudioWAV"
        if not audio_dir.is_dir():
            where = (
                f"data.audio_root {audio_dir} is not a folder" if data.audio_root else f"no AudioWAV folder in {root}"
            )
            raise self._missing(where)
        if data.split_csv is not None:
            if data.label_source != "filename":
                raise DatasetError("CREMA-D: data.split_csv gives the labels; data.label_source must stay 'filename'")
            if data.folds:
                raise DatasetError("CREMA-D: data.split_csv gives the split; data.folds must stay 0")
            return self._items_from_csv(data.split_csv, audio_dir, root / "VideoFlash")
        return self._items_from_names(root, audio_dir, data)

    def _items_from_names(self, root: Path, audio_dir: Path, data: DataConfig) -> list[Item]:
        """The published way: labels from the file names (or the raters' votes), split by actor."""
        parsed: list[tuple[Path, tuple[str, str, str, str]]] = []
        for path in sorted(audio_dir.iterdir()):
            if path.suffix.lower() != ".wav" or not path.is_file():
                continue
            fields = parse_name(path.stem)
            if isinstance(fields, str):
                self.skipped.append((path, fields))
            elif path.stat().st_size <= EMPTY_WAV_BYTES:
                self.skipped.append((path, "empty file"))
            else:
                parsed.append((path, fields))
        if not parsed:
            raise self._missing(f"no usable .wav in {audio_dir}")
        splits, folds = split_speakers([fields[0] for _, fields in parsed], data)
        votes = self._votes(root, data.label_source) if data.label_source != "filename" else None
        video_dir = root / "VideoFlash"
        out: list[Item] = []
        for path, (actor, _, emotion, _) in parsed:
            if votes is not None:
                voted = _voted_emotion(votes.get(path.stem), data.label_source)
                if voted not in self.classes:
                    self.skipped.append((path, voted))
                    continue
                emotion = voted
            video = video_dir / f"{path.stem}.flv"
            out.append(
                Item(
                    audio=path,
                    label=self.classes.index(emotion),
                    speaker=actor,
                    split=splits[actor],
                    video=video if video.is_file() else None,
                    fold=folds[actor],
                )
            )
        return out

    def _items_from_csv(self, spec: str | dict[str, str], audio_dir: Path, video_dir: Path) -> list[Item]:
        """The clips the split CSVs list, labelled and split as they say; a listed clip without
        its WAV or with an unknown emotion is skipped with the reason, and so is a clip listed
        again after a usable listing."""
        out: list[Item] = []
        seen: dict[str, str] = {}
        for row in read_split_csv(spec):
            audio = audio_dir / f"{row.stem}.wav"
            emotion = csv_emotion(row.label)
            if row.stem in seen:
                self.skipped.append((audio, f"listed in {row.source} and in {seen[row.stem]}"))
            elif emotion is None:
                self.skipped.append((audio, f"unknown emotion '{row.label}' in {row.source}"))
            elif not audio.is_file() or audio.stat().st_size <= EMPTY_WAV_BYTES:
                self.skipped.append((audio, f"listed in {row.source} but missing or empty"))
            else:
                fields = parse_name(row.stem)
                video = video_dir / f"{row.stem}.flv"
                out.append(
                    Item(
                        audio=audio,
                        label=self.classes.index(emotion),
                        speaker=fields[0] if isinstance(fields, tuple) else UNKNOWN_SPEAKER,
                        split=row.split,
                        video=video if video.is_file() else None,
                    )
                )
                seen[row.stem] = row.source
        if not out:
            first = f"; first skipped: {self.skipped[0][1]}" if self.skipped else ""
            raise DatasetError(f"CREMA-D: the split CSVs name no usable clip in {audio_dir}{first}")
        return out

    def _votes(self, root: Path, source: str) -> dict[str, str]:
        """File stem → the raters' vote for `source` (voice / face / multimodal)."""
        path = root / SUMMARY
        column = _VOTE_COLUMNS[source]
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                if "FileName" not in (reader.fieldnames or []) or column not in (reader.fieldnames or []):
                    raise DatasetError(f"CREMA-D: {path} has no FileName and {column} columns")
                return {row["FileName"].strip(): (row[column] or "").strip() for row in reader}
        except FileNotFoundError:
            raise DatasetError(
                f"CREMA-D: data.label_source={source} needs {SUMMARY.as_posix()} in {root} (the raters' votes)"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"CREMA-D: cannot read {path}: {exc}") from None

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        return (Path(root) / "AudioWAV").is_dir()

    def synthesize(
        self, out: Path, *, size: str | int = "small", seed: int = 0, video: bool = True, workers: int | None = None
    ) -> int:
        """Write a CREMA-D-shaped stand-in (WAV, optional FLV, summaryTable.csv, marker).

        Every clip has its own seed, so the files do not depend on `workers`; threads overlap
        numpy, the PyAV encoders and file writes. Defaults to all cores, at most 8.
        """
        out = Path(out)
        actors, per_emotion = _resolve_size(self.sizes, size)
        audio_dir, video_dir = out / "AudioWAV", out / "VideoFlash"
        standin.reset_output(out, "cremad", (audio_dir.name, video_dir.name, SUMMARY.parts[0]))
        audio_dir.mkdir(parents=True, exist_ok=True)
        if video:
            video_dir.mkdir(parents=True, exist_ok=True)
        jobs: list[_Clip] = []
        for actor in range(1001, 1001 + actors):
            speaker = synth.speaker_profile(np.random.default_rng([seed, actor]))
            for label, emotion in enumerate(self.classes):
                plan_rng = np.random.default_rng([seed, actor, label, 1])
                for sentence, level in clip_plan(emotion, per_emotion, plan_rng):
                    jobs.append(_Clip(out, seed, actor, speaker, label, sentence, level, video))
        rows = standin.run_jobs(_write_clip, jobs, workers)
        _write_summary(out / SUMMARY, rows)
        standin.write_marker(out, "cremad", size, seed, len(rows), video=video)
        return len(rows)


@dataclass(frozen=True)
class _Clip:
    out: Path
    seed: int
    actor: int
    speaker: synth.SpeakerProfile
    label: int
    sentence: str
    level: str
    video: bool


def _write_clip(job: _Clip) -> list[str]:
    """Write one WAV (and FLV); return its summaryTable row."""
    emotion = CremaD.classes[job.label]
    stem = f"{job.actor}_{job.sentence}_{emotion}_{job.level}"
    sentence = SENTENCES.index(job.sentence)
    rng = np.random.default_rng([job.seed, job.actor, job.label, sentence, LEVELS.index(job.level)])
    talker = synth.Talker.of(job.label, len(CremaD.classes), job.speaker)
    seconds = float(rng.uniform(1.5, 3.0))
    wave = talker.speech(
        rng, sample_rate=SAMPLE_RATE, seconds=seconds, intensity=_INTENSITY[job.level], rhythm_seed=sentence
    )
    sf.write(job.out / "AudioWAV" / f"{stem}.wav", wave, SAMPLE_RATE, subtype="PCM_16")
    row = _summary_row(stem, emotion, rng)
    if job.video:
        frames = talker.face(rng, wave, sample_rate=SAMPLE_RATE, fps=VIDEO_FPS, size=VIDEO_SIZE)
        synth_av.write_flv(job.out / "VideoFlash" / f"{stem}.flv", frames, wave, fps=VIDEO_FPS, sample_rate=SAMPLE_RATE)
    return row


def _voted_emotion(vote: str | None, source: str) -> str:
    """The emotion code a summaryTable vote names, or why the clip has no voted label.
    A tie is written as several letters joined by ':' (e.g. 'N:S')."""
    column = _VOTE_COLUMNS[source]
    if vote is None:
        return f"no row in {SUMMARY.as_posix()}"
    if not vote:
        return f"no {column}"
    if ":" in vote:
        return f"{column} is a tie ({vote})"
    return _VOTE_LETTERS.get(vote.upper(), f"unknown {column} '{vote}'")


def _resolve_size(sizes: dict[str, tuple[int, int | None]], size: str | int) -> tuple[int, int | None]:
    """A named size, or a number of actors (at the default size's clips per emotion)."""
    if isinstance(size, int) and not isinstance(size, bool):
        if not 1 <= size <= 9000:
            raise DatasetError(f"CREMA-D synthetic size must be 1–9000 actors, got {size}")
        return size, sizes["small"][1]
    return standin.resolve_size("cremad", sizes, size)


def _summary_row(stem: str, emotion: str, rng: np.random.Generator) -> list[str]:
    """Votes are the intended emotion's letter; levels are plausible mean intensities."""
    vote = emotion[0]
    levels = rng.uniform(30.0, 95.0, size=3)
    return [stem, vote, f"{levels[0]:.2f}", vote, f"{levels[1]:.2f}", vote, f"{levels[2]:.2f}"]


def _write_summary(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ["", "FileName", "VoiceVote", "VoiceLevel", "FaceVote", "FaceLevel", "MultiModalVote", "MultiModalLevel"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        writer.writerow(header)
        for number, row in enumerate(sorted(rows), start=1):
            writer.writerow([str(number), *row])
