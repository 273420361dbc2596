"""emotions-classify's layout: WAV segments next to `annotations.json`, which maps each file
name to its labels, one per target: `{"<recording>_<i>.wav": {"emotion": "гнев", "state":
"отрицательное"}, …}`.

Every key of the annotations is a head (named after it, in the order of the first entry), its
classes the values found, naturally sorted; for the seed's data that is exactly its order
(EMOTIONS and STATES are alphabetical). Segments of one long recording share a speaker and a
session, so the split is by recording (`<recording>` = the name before the last `_<i>`), 70/10/20
as the other speaker-independent splits; the seed split segments at random (15 % validation, no
test), which lets a recording be learnt and validated at once.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf

from avbench.config import DataConfig
from avbench.errors import DatasetError
from avbench.registry import register_task
from avbench.spec import Item, Task
from avbench.tasks import folders, standin, synth
from avbench.tasks.splits import split_speakers

ANNOTATIONS = "annotations.json"
SAMPLE_RATE = 16000
# The seed's label sets (emotions-classify, disgust removed), which the stand-in writes.
EMOTIONS = ("гнев", "нейтраль", "печаль", "радость", "страх", "удивление")
STATES = ("нейтральное", "отрицательное", "положительное")
# How a state sounds in the stand-in, independent of the emotion: cue strength and spectral tilt.
STATE_INTENSITY = (0.35, 0.7, 1.0)
STATE_TILT_DB = (-6.0, 0.0, 6.0)


def recording_of(name: str) -> str:
    """'interview3_12.wav' → 'interview3': the long recording a segment was cut from."""
    stem = Path(name).stem
    head, sep, index = stem.rpartition("_")
    return head if sep and index.isdigit() else stem


@register_task("annotations")
class Annotations(Task):
    title = "annotations"
    classes: tuple[str, ...] = EMOTIONS
    heads: dict[str, tuple[str, ...]] = {"emotion": EMOTIONS, "state": STATES}
    layout = 'ROOT/annotations.json ({"<file>_<i>.wav": {"emotion": …, "state": …}}) with the WAVs beside it'
    data_options = frozenset({"fold", "folds"})  # recording folds, as the speaker folds of other tasks
    # (recordings, segments per recording)
    sizes = {"tiny": (6, 12), "small": (12, 30), "medium": (30, 40), "full": (60, 60)}

    def __init__(self) -> None:
        self.skipped: list[tuple[Path, str]] = []
        self.heads = dict(type(self).heads)

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        return (Path(root) / ANNOTATIONS).is_file()

    def items(self, root: Path, data: DataConfig) -> list[Item]:
        """Every annotated segment whose WAV exists, split by recording; sets `self.heads` and
        `self.classes` from the annotations."""
        self.check_data_options(data)
        root = Path(root)
        self.skipped = []
        entries = self._read(root)
        names = list(next(iter(entries.values())))
        found: list[tuple[Path, dict[str, str]]] = []
        for file_name, labels in entries.items():
            path = root / file_name
            if not isinstance(labels, dict) or set(labels) != set(names):
                self.skipped.append((path, f"annotation needs exactly the keys {', '.join(names)}"))
            elif not path.is_file():
                self.skipped.append((path, "annotated file is missing"))
            else:
                found.append((path, {name: str(labels[name]) for name in names}))
        if not found:
            raise self.missing(f"no annotated file of {root / ANNOTATIONS} exists")
        self.heads = {
            name: tuple(sorted({labels[name] for _, labels in found}, key=folders.natural_key)) for name in names
        }
        self.classes = self.heads[names[0]]
        by_recording, folds = split_speakers([recording_of(path.name) for path, _ in found], data)
        items = []
        for path, labels in found:
            targets = tuple(self.heads[name].index(labels[name]) for name in names)
            recording = recording_of(path.name)
            items.append(
                Item(path, targets[0], recording, by_recording[recording], targets=targets, fold=folds[recording])
            )
        return items

    def _read(self, root: Path) -> dict:
        if not root.is_dir():
            raise self.missing(f"{root} does not exist")
        path = root / ANNOTATIONS
        if not path.is_file():
            raise self.missing(f"no {ANNOTATIONS} in {root}")
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{path}: not readable JSON ({exc})") from None
        if not isinstance(entries, dict) or not entries:
            raise DatasetError(f'{path}: expected a non-empty mapping {{"<file>.wav": {{"emotion": …, …}}}}')
        first = next(iter(entries.values()))
        if not isinstance(first, dict) or not first:
            raise DatasetError(f"{path}: each file maps to its labels, e.g. {{'emotion': …, 'state': …}}")
        return entries

    def synthesize(self, out: Path, *, size: str = "small", seed: int = 0, workers: int | None = None) -> int:
        """Write `rec<NN>_<i>.wav` segments (1–3 s, 16 kHz, 16-bit mono; i from 1, as the seed's
        kept segments) and their annotations.json. Each recording is one speaker; the emotion
        shapes pitch, rhythm and spectrum, the state independently the cues' strength and tilt."""
        recordings, segments = standin.resolve_size(self.name, self.sizes, size)
        out = Path(out)
        standin.reset_output(out, self.name, [ANNOTATIONS, "*.wav"])
        for stale in out.glob("rec*_*.wav"):
            stale.unlink()
        jobs, annotations = [], {}
        for number in range(1, recordings + 1):
            speaker = synth.speaker_profile(np.random.default_rng([seed, number]))
            labels = np.random.default_rng([seed, number, 7])
            for index in range(1, segments + 1):
                emotion, state = int(labels.integers(len(EMOTIONS))), int(labels.integers(len(STATES)))
                name = f"rec{number:02d}_{index}.wav"
                annotations[name] = {"emotion": EMOTIONS[emotion], "state": STATES[state]}
                jobs.append((out / name, seed, number, speaker, emotion, state, index))
        standin.run_jobs(_write_segment, jobs, workers)
        text = json.dumps(annotations, ensure_ascii=False, indent=1)
        (out / ANNOTATIONS).write_text(text + "\n", encoding="utf-8")
        standin.write_marker(out, self.name, size, seed, len(jobs))
        return len(jobs)


def _write_segment(job: tuple) -> None:
    path, seed, number, speaker, emotion, state, index = job
    rng = np.random.default_rng([seed, number, emotion, state, index])
    wave = synth.speech_like(
        rng,
        sample_rate=SAMPLE_RATE,
        seconds=float(rng.uniform(1.0, 3.0)),
        profile=synth.class_profile(emotion, len(EMOTIONS)),
        speaker=replace(speaker, tilt_offset=speaker.tilt_offset + STATE_TILT_DB[state]),
        intensity=STATE_INTENSITY[state],
        rhythm_seed=index,
    )
    sf.write(path, wave, SAMPLE_RATE, subtype="PCM_16")
